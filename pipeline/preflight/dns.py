"""Sender-domain checks: DKIM, SPF for the envelope sender, DMARC, MX, free-mail From.

Looked up with dnspython (the system resolver unless ``[preflight] nameservers``
names others) and checkdmarc's SPF and DMARC parsers, which count SPF's DNS
lookups the way receivers do. A resolver that does not answer is a warning,
never a failure, so an offline machine can still send to its outbox; answered
results are cached for an hour so a scheduled firing never waits on DNS twice.
"""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable

import checkdmarc.dmarc
import checkdmarc.utils
import dns.resolver
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import load_der_public_key

from pipeline.config import Settings
from pipeline.preflight.report import Check, failed, passed, soften, warned
from pipeline.preflight.resolver import Unreachable, answers, make_resolver, txt_strings
from pipeline.preflight.spf import check_spf, spf_problem, spf_transport

GROUP = "dns"
CACHE_SECONDS = 3600.0
MIN_DKIM_BITS = 1024
SENDGRID_SELECTORS = ("s1", "s2")
#: Mailbox providers whose DMARC policy rejects mail sent in their name from elsewhere.
FREE_MAIL = frozenset(
    {
        "gmail.com", "googlemail.com", "yahoo.com", "yahoo.co.uk", "yahoo.com.au", "ymail.com",
        "hotmail.com", "hotmail.co.uk", "outlook.com", "live.com", "msn.com", "aol.com",
        "icloud.com", "me.com", "mac.com", "gmx.com", "gmx.net", "mail.com", "proton.me",
        "protonmail.com", "zoho.com", "yandex.com", "bigpond.com", "optusnet.com.au",
    }
)  # fmt: skip

Clock = Callable[[], float]
_cache: dict[tuple[object, ...], tuple[float, tuple[Check, ...]]] = {}
_cache_lock = threading.Lock()


def clear_cache() -> None:
    """Forget cached DNS results (tests; a changed zone the owner wants seen now)."""
    with _cache_lock:
        _cache.clear()


# -- DKIM --------------------------------------------------------------------------


def _dkim_key(record: str) -> tuple[str | None, str]:
    """(problem or None, description) of one DKIM TXT record."""
    tags = dict(
        (part.split("=", 1)[0].strip().lower(), part.split("=", 1)[1].strip())
        for part in record.split(";")
        if "=" in part
    )
    kind = tags.get("k", "rsa").lower()
    key = "".join(tags.get("p", "").split())
    if not key:
        return "has an empty key (revoked)", "revoked key"
    if kind == "ed25519":
        return None, "Ed25519 key"
    try:
        public = load_der_public_key(base64.b64decode(key))
    except ValueError:
        return "has a key that does not parse", "unreadable key"
    if not isinstance(public, rsa.RSAPublicKey):
        return None, f"{kind} key"
    bits = public.key_size
    if bits < MIN_DKIM_BITS:
        return f"has a {bits}-bit key (at least {MIN_DKIM_BITS} needed)", f"{bits}-bit RSA key"
    return None, f"{bits}-bit RSA key"


def _dkim(resolver: dns.resolver.Resolver, settings: Settings, domain: str) -> Check:
    transport = settings.sending.transport
    selectors = settings.email.dkim_selectors or (
        SENDGRID_SELECTORS if transport == "sendgrid" else ()
    )
    if not selectors and transport == "outbox":
        return passed(GROUP, "DKIM", "the outbox transport sends nothing over the internet")
    if not selectors:
        return warned(
            GROUP,
            "DKIM",
            f"no DKIM selector known for the {transport} transport, so DKIM was not checked",
            "set [email] dkim_selectors to the selector(s) your mail server signs with",
        )
    found: list[str] = []
    for selector in selectors:
        name = f"{selector}._domainkey.{domain}"
        records = [r for r in txt_strings(answers(resolver, name, "TXT")) if "p=" in r]
        if not records:
            if transport == "sendgrid":
                why = "SendGrid then signs with its own domain, which DMARC cannot align"
                fix = (
                    "add the CNAME records SendGrid shows under Settings > Sender "
                    f"Authentication for {domain}: "
                    + " and ".join(f"{s}._domainkey.{domain}" for s in selectors)
                )
            else:
                why = "mail from this server cannot pass DKIM"
                fix = f"publish your mail server's DKIM public key as a TXT record at {name}"
            return failed(GROUP, "DKIM", f"no DKIM key at {name}: {why} with {domain}", fix)
        problem, description = _dkim_key(records[0])
        if problem is not None:
            return failed(
                GROUP,
                "DKIM",
                f"the DKIM record at {name} {problem}",
                f"publish a new 2048-bit key at {name}"
                + (" (redo SendGrid's domain authentication)" if transport == "sendgrid" else ""),
            )
        found.append(f"{selector}: {description}")
    return passed(GROUP, "DKIM", f"keys on {domain} ({'; '.join(found)})")


# -- DMARC, MX ---------------------------------------------------------------------


def _dmarc(resolver: dns.resolver.Resolver, domain: str, timeout: float) -> Check:
    result = checkdmarc.dmarc.check_dmarc(domain, resolver=resolver, timeout=timeout)
    record_fix = (
        f'add this TXT record at _dmarc.{domain}: "v=DMARC1; p=none; rua=mailto:dmarc@{domain}"'
    )
    if result.get("record") is None:
        return failed(
            GROUP,
            "DMARC",
            f"no DMARC record at _dmarc.{domain}: Gmail, Yahoo and Outlook reject bulk mail "
            "without one",
            record_fix,
        )
    if not result.get("valid"):
        return failed(
            GROUP, "DMARC", f"the DMARC record does not parse: {result.get('error')}", record_fix
        )
    policy = str(result.get("tags", {}).get("p", {}).get("value", "none"))
    note = " (monitoring only)" if policy == "none" else ""
    return passed(GROUP, "DMARC", f"p={policy}{note} at _dmarc.{result.get('location')}")


def _mx(resolver: dns.resolver.Resolver, domain: str) -> Check:
    records = answers(resolver, domain, "MX")
    if not records:
        return warned(
            GROUP,
            "MX",
            f"no MX record at {domain}: replies to the From address cannot arrive",
            f"add an MX record at {domain} for your mailbox provider (or set [email] reply_to "
            "to an address that receives mail)",
        )
    hosts = ", ".join(sorted(r.exchange.to_text().rstrip(".") for r in records))
    return passed(GROUP, "MX", f"{domain} receives mail at {hosts}")


# -- the whole group ----------------------------------------------------------------


def _run(settings: Settings, domain: str) -> tuple[Check, ...]:
    resolver = make_resolver(settings)
    # checkdmarc keeps its own cache keyed by name only; ours (keyed by settings) rules.
    checkdmarc.utils.DNS_CACHE.clear()
    mx = _mx(resolver, domain)  # the first query also proves the resolver answers
    timeout = settings.preflight.dns_timeout
    own = check_spf(resolver, domain, timeout)
    own_problem = spf_problem(own, domain)
    checks = [
        _dkim(resolver, settings, domain),
        own_problem or spf_transport(resolver, settings, domain, own),
        _dmarc(resolver, domain, timeout),
        mx,
    ]
    return tuple(checks)


def dns_checks(settings: Settings, *, clock: Clock = time.monotonic) -> tuple[Check, ...]:
    """The sender-domain lines of a preflight, from the cache when under an hour old."""
    domain = settings.email.from_email.rpartition("@")[2].strip().lower().rstrip(".")
    if domain in FREE_MAIL:
        return (
            failed(
                GROUP,
                "From domain",
                f"{settings.email.from_email} is a free-mail address: {domain}'s DMARC policy "
                "makes receivers reject mail sent for it from elsewhere",
                "send from an address at your own domain ([email] from_email), e.g. "
                "news@yourclinic.com",
            ),
        )
    key = (
        domain,
        settings.preflight.nameservers,
        settings.sending.transport,
        settings.sendgrid.return_path_domain,
        settings.email.dkim_selectors,
        settings.smtp.host,
    )
    now = clock()
    with _cache_lock:
        hit = _cache.get(key)
    if hit is not None and now < hit[0]:
        checks = hit[1]
    else:
        try:
            checks = _run(settings, domain)
        except (Unreachable, dns.resolver.NoResolverConfiguration) as exc:
            # Not cached: the next run should try again once the network is back.
            return (
                warned(
                    GROUP,
                    "DNS",
                    f"the DNS resolver did not answer ({exc}); sender-domain checks "
                    "(DKIM, SPF, DMARC, MX) were skipped",
                    "check the network connection, or set [preflight] nameservers",
                ),
            )
        with _cache_lock:
            _cache[key] = (now + CACHE_SECONDS, checks)
    if settings.sending.transport == "outbox":
        why = "the outbox transport delivers nothing; a real transport would be refused"
        return tuple(soften(check, why) for check in checks)
    return checks
