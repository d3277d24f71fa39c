"""Small helpers shared by tests: a copy of the sample folder and a fixed clock."""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_SLUG = "hip-pain-massage-therapy"


#: The sample clinic's sender domain (``[email] from_email`` in newsletter.toml).
SAMPLE_DOMAIN = "cloudformmassage.com.au"

_dns_lock = threading.Lock()
_dns_servers = ExitStack()
_sample_nameserver: str | None = None


def sample_nameserver() -> str:
    """A loopback DNS server answering for the sample clinic as a correct setup would.

    Started once per test process and kept for its life. ``send`` and scheduled
    firings run preflight, whose DNS checks must never ask this machine's
    resolver (tests are hermetic): the sample folder's ``[preflight]
    nameservers`` points here, at SPF (covering loopback SMTP and SendGrid),
    SendGrid's DKIM CNAMEs and a DMARC record.
    """
    global _sample_nameserver
    with _dns_lock:
        if _sample_nameserver is None:
            from tests.fakes import preflight_zones
            from tests.fakes.dns_server import dns_server, txt

            zone = {
                name.replace("example.com", SAMPLE_DOMAIN): [
                    record.replace("example.com", SAMPLE_DOMAIN) for record in records
                ]
                for name, records in preflight_zones.correct_own_spf().items()
            }
            zone[SAMPLE_DOMAIN] = [
                f"MX 10 mail.{SAMPLE_DOMAIN}.",
                txt("v=spf1 ip4:127.0.0.0/8 include:sendgrid.net -all"),
            ]
            _sample_nameserver = _dns_servers.enter_context(dns_server(zone))
        return _sample_nameserver


def copy_sample_folder(target: Path, *, hermetic_dns: bool = True, welcome: bool = False) -> Path:
    """Copy the repository's sample newsletter folder; return its settings file.

    With ``hermetic_dns`` (the default) the copy's preflight asks the loopback
    DNS server of :func:`sample_nameserver`, never the machine's resolver.
    Without ``welcome`` (the default) the copy leaves out the welcome email's
    templates, so tests about issues count only issues; the welcome tests ask for it.
    """
    target.mkdir(parents=True, exist_ok=True)
    for name in ("newsletter.toml", "sample-subscribers.csv"):
        shutil.copyfile(ROOT / name, target / name)
    for folder in ("articles", "templates"):
        shutil.copytree(ROOT / folder, target / folder)
    if not welcome:
        for name in ("welcome.mjml", "welcome.txt"):
            (target / "templates" / name).unlink(missing_ok=True)
    config = target / "newsletter.toml"
    if hermetic_dns:
        with config.open("a", encoding="utf-8") as settings:
            settings.write(f'\n[preflight]\nnameservers = ["{sample_nameserver()}"]\n')
    return config


class FixedClock:
    """A clock tests move by hand, so nothing ever sleeps."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 11, 25, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        """Move the clock forward."""
        self.now += timedelta(**delta)


Clock = Callable[[], datetime]


class LogAnnounced(logging.Handler):
    """Sets ``event`` when a log line containing ``text`` is emitted (no polling)."""

    def __init__(self, text: str) -> None:
        super().__init__(logging.DEBUG)
        self.text = text
        self.event = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if self.text in record.getMessage():
            self.event.set()


def stop_while_waiting(
    transport: Any, send: Callable[[], Sequence[Any]], logger: str, announcement: str
) -> tuple[list[Any], float]:
    """Run ``send`` in a thread inside ``with transport``; once ``logger`` announces its
    wait (a log line containing ``announcement``), ask the transport to stop.

    Returns the batch's results and the seconds from the stop to the thread's end.
    """
    announced = LogAnnounced(announcement)
    logging.getLogger(logger).addHandler(announced)
    results: list[Any] = []
    try:
        with transport:
            worker = threading.Thread(target=lambda: results.extend(send()), daemon=True)
            worker.start()
            assert announced.event.wait(10), "the transport never started waiting"
            stopped_at = time.monotonic()
            transport.request_stop()  # what SIGTERM does, through the runner
            worker.join(timeout=5)
            took = time.monotonic() - stopped_at
    finally:
        logging.getLogger(logger).removeHandler(announced)
    assert not worker.is_alive(), "the wait was not interrupted"
    return results, took
