"""The DNS resolver preflight asks: the system's, or ``[preflight] nameservers``."""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

import dns.exception
import dns.nameserver
import dns.resolver

from pipeline.config import Settings


class Unreachable(Exception):
    """The resolver gave no answer at all (no network, wrong nameserver)."""


def _nameserver(entry: str) -> dns.nameserver.Nameserver:
    host, port = entry.strip(), 53
    if host.startswith("["):  # [2001:db8::1]:5353
        host, _, rest = host[1:].partition("]")
        port = int(rest.lstrip(":") or 53)
    elif host.count(":") == 1:
        host, _, number = host.partition(":")
        port = int(number)
    try:
        ipaddress.ip_address(host)
    except ValueError:
        host = str(socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0][4][0])
    return dns.nameserver.Do53Nameserver(host, port)


def make_resolver(settings: Settings) -> dns.resolver.Resolver:
    """The system's resolver, or one asking ``[preflight] nameservers``."""
    options = settings.preflight
    if options.nameservers:
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = [_nameserver(entry) for entry in options.nameservers]
    else:
        resolver = dns.resolver.Resolver()
    resolver.timeout = options.dns_timeout
    resolver.lifetime = options.dns_timeout
    return resolver


def answers(resolver: dns.resolver.Resolver, name: str, rdtype: str) -> list[Any]:
    """The records, [] when the name or the type is not there; Unreachable on no answer."""
    try:
        return list(resolver.resolve(name, rdtype))
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return []
    except (dns.exception.Timeout, dns.resolver.NoNameservers, OSError) as exc:
        raise Unreachable(str(exc) or type(exc).__name__) from exc


def txt_strings(records: list[Any]) -> list[str]:
    return [b"".join(r.strings).decode("utf-8", "replace") for r in records]
