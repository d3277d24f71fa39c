"""SPF for the envelope sender the transport really uses, via checkdmarc's parser.

checkdmarc counts DNS lookups the way receivers do: more than 10 is a
permanent error, so SPF fails.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator, Mapping
from typing import Any

import checkdmarc.spf
import dns.resolver

from pipeline.config import Settings
from pipeline.preflight.report import Check, failed, passed, warned
from pipeline.preflight.resolver import answers

GROUP = "dns"
SPF_LOOKUP_LIMIT = 10
SENDGRID_SPF = "sendgrid.net"


def check_spf(resolver: dns.resolver.Resolver, domain: str, timeout: float) -> dict[str, Any]:
    return dict(checkdmarc.spf.check_spf(domain, resolver=resolver, timeout=timeout, retries=0))


def _walk(parsed: Mapping[str, Any] | None) -> Iterator[Mapping[str, Any]]:
    """Every mechanism of a parsed SPF record, includes followed."""
    if not parsed:
        return
    for mechanism in parsed.get("mechanisms", []):
        yield mechanism
        yield from _walk(mechanism.get("parsed"))
    redirect = parsed.get("redirect")
    if isinstance(redirect, Mapping):
        yield from _walk(redirect.get("parsed"))


def _includes(result: Mapping[str, Any], target: str) -> bool:
    return any(
        m.get("mechanism") == "include" and str(m.get("value", "")).lower() == target
        for m in _walk(result.get("parsed"))
    )


def spf_problem(result: Mapping[str, Any], domain: str) -> Check | None:
    """A failing line for a record that exists but is broken or too deep."""
    if result.get("record") is None or result.get("valid"):
        return None
    error = str(result.get("error", "invalid"))
    lookups = result.get("dns_lookups")
    if isinstance(lookups, int) and lookups > SPF_LOOKUP_LIMIT:
        return failed(
            GROUP,
            "SPF",
            f"the SPF record at {domain} needs {lookups} DNS lookups (the limit is "
            f"{SPF_LOOKUP_LIMIT}), so receivers treat it as a permanent error",
            f"remove include: entries you no longer use at {domain}, or replace some "
            f"with ip4:/ip6: ranges, until it needs at most {SPF_LOOKUP_LIMIT} lookups",
        )
    return failed(
        GROUP,
        "SPF",
        f"the SPF record at {domain} does not parse: {error}",
        f"correct the TXT record at {domain} (it must start with v=spf1)",
    )


def _host_addresses(resolver: dns.resolver.Resolver, host: str) -> list[str]:
    try:
        return [str(ipaddress.ip_address(host))]
    except ValueError:
        pass
    return [r.to_text() for kind in ("A", "AAAA") for r in answers(resolver, host, kind)]


def _covered(resolver: dns.resolver.Resolver, result: Mapping[str, Any], address: str) -> bool:
    ip = ipaddress.ip_address(address)
    for m in _walk(result.get("parsed")):
        kind, value = m.get("mechanism"), str(m.get("value") or "")
        if m.get("action") != "pass":
            continue
        if kind in ("ip4", "ip6"):
            try:
                if ip in ipaddress.ip_network(value, strict=False):
                    return True
            except ValueError:
                continue
        elif kind == "a" and value and address in _host_addresses(resolver, value):
            return True
    return False


def spf_transport(
    resolver: dns.resolver.Resolver, settings: Settings, domain: str, own: dict[str, Any]
) -> Check:
    transport, timeout = settings.sending.transport, settings.preflight.dns_timeout
    if transport == "sendgrid":
        return_path = settings.sendgrid.return_path_domain
        if return_path:
            result = check_spf(resolver, return_path, timeout)
            problem = spf_problem(result, return_path)
            if problem is not None:
                return problem
            if result.get("record") is None or not _includes(result, SENDGRID_SPF):
                return failed(
                    GROUP,
                    "SPF",
                    f"the return-path domain {return_path} has no SPF record covering SendGrid",
                    f"add the CNAME record SendGrid shows for {return_path} (it points at "
                    f"uNNNN.wl.sendgrid.net), or a TXT record there: v=spf1 include:"
                    f"{SENDGRID_SPF} ~all",
                )
            if not (return_path == domain or return_path.endswith("." + domain)):
                return warned(
                    GROUP,
                    "SPF",
                    f"SPF passes at {return_path}, but it is not under {domain}, so SPF "
                    "cannot align for DMARC",
                    f"authenticate a return-path subdomain of {domain} in SendGrid",
                )
            return passed(GROUP, "SPF", f"envelope sender {return_path} includes {SENDGRID_SPF}")
        if own.get("record") is not None and _includes(own, SENDGRID_SPF):
            return passed(GROUP, "SPF", f"the SPF record at {domain} includes {SENDGRID_SPF}")
        return warned(
            GROUP,
            "SPF",
            "SPF for SendGrid's envelope sender could not be verified: [sendgrid] "
            "return_path_domain is not set",
            f"set [sendgrid] return_path_domain to the em….{domain} name SendGrid's domain "
            f"authentication created (or add include:{SENDGRID_SPF} to the SPF record at "
            f"{domain})",
        )
    if transport == "smtp":
        host = settings.smtp.host
        if own.get("record") is None:
            return failed(
                GROUP,
                "SPF",
                f"no SPF record at {domain}",
                f"add a TXT record at {domain}: v=spf1 a:{host} ~all (or your mail "
                "provider's include:)",
            )
        addresses = _host_addresses(resolver, host)
        if not addresses:
            return warned(GROUP, "SPF", f"[smtp] host {host} has no address in DNS to check")
        if any(_covered(resolver, own, a) for a in addresses):
            return passed(GROUP, "SPF", f"the SPF record at {domain} covers {host}")
        if any(m.get("mechanism") in ("mx", "exists", "ptr") for m in _walk(own.get("parsed"))):
            # mx/exists/ptr depend on the connecting host: only a real send can tell.
            return warned(
                GROUP, "SPF", f"could not confirm that the SPF record at {domain} covers {host}"
            )
        return failed(
            GROUP,
            "SPF",
            f"the SPF record at {domain} does not cover {host} ({', '.join(addresses)})",
            f"add a:{host} (or your provider's include:) to the SPF record at {domain}",
        )
    return passed(GROUP, "SPF", f"the {transport} transport sends nothing over the internet")
