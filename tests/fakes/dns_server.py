"""A real DNS server on 127.0.0.1 (dnslib) answering from an in-memory zone.

Preflight's resolver is pointed at it through ``[preflight] nameservers``, so
the DNS checks run real queries over UDP and TCP and never touch the internet.
Unlike dnslib's ZoneResolver this one follows CNAMEs inside the zone (as an
authoritative server for both names would) and answers NOERROR with no
records for a name that exists with other types.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from dnslib import QTYPE, RCODE, RR
from dnslib.server import BaseResolver, DNSLogger, DNSServer

#: name -> list of zone-file lines (without the name), e.g. ``"TXT \"v=spf1 -all\""``.
Zone = Mapping[str, Sequence[str]]


def txt(value: str) -> str:
    """A TXT record line, split into the 255-byte strings DNS requires."""
    parts = [value[i : i + 250] for i in range(0, len(value), 250)] or [""]
    return "TXT " + " ".join(f'"{part}"' for part in parts)


class _ZoneResolver(BaseResolver):  # type: ignore[misc]
    def __init__(self, zone: Zone) -> None:
        self.records: list[Any] = []
        for name, lines in zone.items():
            for line in lines:
                self.records.extend(RR.fromZone(f"{name}. 300 IN {line}"))

    def _find(self, name: Any, qtype: str) -> list[Any]:
        return [rr for rr in self.records if rr.rname == name and QTYPE[rr.rtype] == qtype]

    def resolve(self, request: Any, handler: Any) -> Any:
        reply = request.reply()
        name, qtype = request.q.qname, QTYPE[request.q.qtype]
        for _ in range(8):  # a CNAME chain, bounded
            answers = self._find(name, qtype)
            if answers:
                for rr in answers:
                    reply.add_answer(rr)
                break
            cnames = self._find(name, "CNAME") if qtype != "CNAME" else []
            if not cnames:
                break
            reply.add_answer(cnames[0])
            name = cnames[0].rdata.label
        if not reply.rr and not any(rr.rname == name for rr in self.records):
            reply.header.rcode = RCODE.NXDOMAIN
        return reply


def _free_port() -> int:
    # A port free for both UDP and TCP (dnspython retries truncated answers over TCP).
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            port = int(udp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return port
    raise RuntimeError("no free port for the test DNS server")


@contextmanager
def dns_server(zone: Zone) -> Iterator[str]:
    """Serve ``zone`` on 127.0.0.1; yields ``"127.0.0.1:PORT"`` for ``[preflight] nameservers``."""
    resolver = _ZoneResolver(zone)
    logger = DNSLogger(log="-request,-reply,-truncated,-error,-recv,-send,-data", prefix=False)
    port = _free_port()
    servers = [
        DNSServer(resolver, address="127.0.0.1", port=port, logger=logger, tcp=tcp)
        for tcp in (False, True)
    ]
    for server in servers:
        server.start_thread()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        for server in servers:
            server.stop()
            server.server.server_close()
