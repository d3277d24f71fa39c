"""Preflight's sender-domain checks against a real DNS server on loopback (dnslib).

Each broken zone gives exactly one failing line with its own fix; the correct
zones pass; a resolver that does not answer is a warning; answers are cached
for an hour.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.config import Settings, load_settings
from pipeline.preflight import Status, clear_cache
from pipeline.preflight.dns import CACHE_SECONDS, dns_checks
from tests.fakes import preflight_zones as zones
from tests.fakes.dns_server import Zone, dns_server


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    clear_cache()
    yield
    clear_cache()


def make_settings(
    tmp_path: Path,
    nameserver: str,
    *,
    from_email: str = "news@example.com",
    transport: str = "sendgrid",
    return_path: str | None = zones.RETURN_PATH,
    extra: str = "",
) -> Settings:
    sendgrid = f'return_path_domain = "{return_path}"' if return_path else ""
    config = tmp_path / "newsletter.toml"
    config.write_text(
        f"""
[clinic]
name = "Test Clinic"
postal_address = "1 Test Street"
[email]
from_email = "{from_email}"
[sending]
transport = "{transport}"
[sendgrid]
{sendgrid}
[preflight]
nameservers = ["{nameserver}"]
dns_timeout = 1.0
{extra}
""",
        encoding="utf-8",
    )
    return load_settings(config, environ={"NEWSLETTER_SECRET_KEY": "test"})


def run(tmp_path: Path, zone: Zone, **options: str | None) -> list[tuple[str, Status, str, str]]:
    with dns_server(zone) as nameserver:
        checks = dns_checks(make_settings(tmp_path, nameserver, **options))  # type: ignore[arg-type]
    return [(c.name, c.status, c.found, c.fix or "") for c in checks]


def failures(results: list[tuple[str, Status, str, str]]) -> list[tuple[str, str, str]]:
    return [(name, found, fix) for name, status, found, fix in results if status is Status.FAIL]


def test_sendgrid_with_return_path_subdomain_passes(tmp_path: Path) -> None:
    results = run(tmp_path, zones.correct_return_path())
    assert [(name, status) for name, status, _, _ in results] == [
        ("DKIM", Status.PASS),
        ("SPF", Status.PASS),
        ("DMARC", Status.PASS),
        ("MX", Status.PASS),
    ]
    found = {name: text for name, _, text, _ in results}
    assert "s1: 2048-bit RSA key; s2: 2048-bit RSA key" in found["DKIM"]
    assert found["SPF"] == "envelope sender em1234.example.com includes sendgrid.net"
    assert found["DMARC"].startswith("p=none")


def test_sendgrid_with_the_from_domains_own_spf_passes(tmp_path: Path) -> None:
    results = run(tmp_path, zones.correct_own_spf(), return_path=None)
    assert all(status is Status.PASS for _, status, _, _ in results), results
    assert ("SPF", "the SPF record at example.com includes sendgrid.net") in [
        (name, found) for name, _, found, _ in results
    ]


def test_no_dmarc_fails_with_the_record_to_add(tmp_path: Path) -> None:
    [(name, found, fix)] = failures(run(tmp_path, zones.no_dmarc()))
    assert name == "DMARC"
    assert found.startswith("no DMARC record at _dmarc.example.com")
    assert fix == (
        'add this TXT record at _dmarc.example.com: "v=DMARC1; p=none; '
        'rua=mailto:dmarc@example.com"'
    )


def test_dkim_only_on_the_providers_domain_fails(tmp_path: Path) -> None:
    [(name, found, fix)] = failures(run(tmp_path, zones.dkim_only_at_provider()))
    assert name == "DKIM"
    assert found == (
        "no DKIM key at s1._domainkey.example.com: SendGrid then signs with its own "
        "domain, which DMARC cannot align with example.com"
    )
    assert "s1._domainkey.example.com and s2._domainkey.example.com" in fix


def test_eleven_spf_lookups_fail(tmp_path: Path) -> None:
    [(name, found, fix)] = failures(run(tmp_path, zones.eleven_spf_lookups(), return_path=None))
    assert name == "SPF"
    assert "needs 11 DNS lookups (the limit is 10)" in found
    assert "at most 10 lookups" in fix


def test_a_512_bit_dkim_key_fails(tmp_path: Path) -> None:
    [(name, found, fix)] = failures(run(tmp_path, zones.weak_dkim_key()))
    assert name == "DKIM"
    assert found == (
        "the DKIM record at s1._domainkey.example.com has a 512-bit key (at least 1024 needed)"
    )
    assert fix.startswith("publish a new 2048-bit key at s1._domainkey.example.com")


def test_a_gmail_from_address_fails(tmp_path: Path) -> None:
    results = run(tmp_path, zones.correct_return_path(), from_email="clinic@gmail.com")
    [(name, found, fix)] = failures(results)
    assert len(results) == 1
    assert name == "From domain"
    assert "clinic@gmail.com is a free-mail address" in found
    assert "[email] from_email" in fix


def test_spf_unverifiable_without_return_path_is_a_warning(tmp_path: Path) -> None:
    zone = zones.correct_return_path()  # the From domain's SPF does not include SendGrid
    results = run(tmp_path, zone, return_path=None)
    assert failures(results) == []
    [spf] = [r for r in results if r[0] == "SPF"]
    assert spf[1] is Status.WARN
    assert "return_path_domain" in spf[3]


def test_outbox_transport_turns_failures_into_warnings(tmp_path: Path) -> None:
    results = run(tmp_path, zones.no_dmarc(), transport="outbox")
    assert failures(results) == []
    [dmarc] = [r for r in results if r[0] == "DMARC"]
    assert dmarc[1] is Status.WARN and "outbox" in dmarc[2]


def _silent_port() -> int:
    # Bound and never read: queries sent here get no answer at all.
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    _silent.append(sock)
    return int(sock.getsockname()[1])


_silent: list[socket.socket] = []


def test_an_unreachable_resolver_is_a_warning_not_a_failure(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, f"127.0.0.1:{_silent_port()}", extra="")
    settings = settings.model_copy(
        update={"preflight": settings.preflight.model_copy(update={"dns_timeout": 0.3})}
    )
    [check] = dns_checks(settings)
    assert check.status is Status.WARN
    assert check.name == "DNS"
    assert "did not answer" in check.found


def test_answers_are_cached_for_an_hour(tmp_path: Path) -> None:
    now = [1000.0]
    with dns_server(zones.no_dmarc()) as nameserver:
        settings = make_settings(tmp_path, nameserver)
        first = dns_checks(settings, clock=lambda: now[0])
    # The server is gone: within the hour the answer comes from the cache.
    now[0] += CACHE_SECONDS - 1
    assert dns_checks(settings, clock=lambda: now[0]) == first
    now[0] += 2
    [check] = dns_checks(settings.model_copy(), clock=lambda: now[0])
    assert check.name == "DNS" and check.status is Status.WARN
