"""Shared by the scheduler tests (and the owner-alert and retry tests): constants, bounded
waits, the sample folder, and starting a real SchedulerService.

APScheduler reads the real clock (its misfire check calls ``datetime.now``), so
the tests that run a real scheduler move the whole process's clock with
time-machine (``tick=True``: time then flows from the chosen moment). Everything
else passes ``now`` in. Every wait is bounded.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import time_machine

from pipeline.config import load_settings
from pipeline.newsletter import Newsletter
from pipeline.schedule.service import SchedulerService, Timing
from pipeline.subscribers import import_csv
from tests.helpers import FixedClock, copy_sample_folder

SYDNEY = ZoneInfo("Australia/Sydney")
PART_1 = "massage-and-mental-health"
PART_3 = "massage-guns-are-they-worth-it"
#: Short intervals so leadership changes take a fraction of a second.
FAST = Timing(lease=3.0, renew_every=0.2, retry_every=0.2, poll_every=0.2)
SUBSCRIBERS = 5


def wait_for(condition: Callable[[], bool], timeout: float = 15.0) -> bool:
    """Poll ``condition`` until true or ``timeout`` seconds pass (bounded, never forever)."""
    deadline = datetime.now(UTC) + timedelta(seconds=timeout)
    event = threading.Event()
    while datetime.now(UTC) < deadline:
        if condition():
            return True
        event.wait(0.05)
    return condition()


def set_schedule(config: Path, cron: str, grace: str = "6h") -> None:
    """Rewrite the folder's [schedule] section."""
    text = config.read_text(encoding="utf-8")
    text = re.sub(r'cron = "[^"]*"', f'cron = "{cron}"', text)
    text = re.sub(r'catch_up_grace = "[^"]*"', f'catch_up_grace = "{grace}"', text)
    config.write_text(text, encoding="utf-8")


def sample_folder_with_subscribers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A sample folder with its five subscribers imported; returns its settings file."""
    for name in ("NEWSLETTER_DATABASE_URL", "NEWSLETTER_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NEWSLETTER_SECRET_KEY", "scheduler-test-secret")
    path = copy_sample_folder(tmp_path / "clinic")
    newsletter = Newsletter(load_settings(path))
    import_csv(newsletter.sessions, path.parent / "sample-subscribers.csv")
    newsletter.close()
    return path


def open_folder(config: Path, now: datetime | None = None) -> Newsletter:
    return Newsletter(load_settings(config), clock=FixedClock(now) if now else FixedClock())


def outbox_files(config: Path) -> list[Path]:
    return sorted((config.parent / "outbox").glob("*/*.eml"))


def campaigns(config: Path) -> list[str]:
    newsletter = open_folder(config)
    try:
        return [c.slug for c in reversed(newsletter.ledger.campaigns())]
    finally:
        newsletter.close()


def start_service(
    config: Path, services: list[SchedulerService], timing: Timing = FAST, lead: bool = True
) -> SchedulerService:
    service = SchedulerService(load_settings(config), config, timing=timing)
    services.append(service)
    service.start()
    if lead:
        assert service.wait_until_leader(20), "the service never became the leader"
    return service


def messages(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(record.getMessage() for record in caplog.records)


def _down_then_up(config: Path, services: list[SchedulerService]) -> SchedulerService:
    """Run the scheduler on Monday 2026-11-30 noon and stop it; start it again now."""
    with time_machine.travel(datetime(2026, 11, 30, 12, 0, tzinfo=SYDNEY), tick=True):
        service = start_service(config, services)
        assert service.next_firing() == datetime(2026, 12, 1, 9, 0, tzinfo=SYDNEY)
        service.stop()
    return start_service(config, services)
