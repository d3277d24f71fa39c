"""Issue 16: the running scheduler tells the owner about a skipped firing and a lost lease.

A real SchedulerService (APScheduler reads the real clock, moved with
time-machine as in test_scheduler_clock.py); the message is read back from the outbox.
"""

from __future__ import annotations

import email
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.policy import default
from pathlib import Path

import pytest
import time_machine
from sqlalchemy import update

from pipeline.config import load_settings
from pipeline.schedule.service import SchedulerService
from pipeline.store.db import make_engine
from pipeline.store.models import SchedulerState
from tests.schedule.scheduler_helpers import (
    SYDNEY,
    _down_then_up,
    sample_folder_with_subscribers,
    start_service,
    wait_for,
)

OWNER = "owner@example.com"


@pytest.fixture
def clinic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The scheduler tests' sample folder, with [owner] email set."""
    path = sample_folder_with_subscribers(tmp_path, monkeypatch)
    text = path.read_text(encoding="utf-8")
    line = '# email = "owner@cloudformmassage.com.au"'
    assert line in text
    path.write_text(text.replace(line, f'email = "{OWNER}"'), encoding="utf-8")
    return path


@pytest.fixture
def running() -> Iterator[list[SchedulerService]]:
    """Services a test started; any still running are stopped at the end."""
    started: list[SchedulerService] = []
    yield started
    for service in started:
        if service._thread.is_alive():
            service.stop(wait=True)


def owner_mail(path: Path) -> list[EmailMessage]:
    files = sorted((path.parent / "outbox" / "owner-notifications").glob("*.eml"))
    parsed = [email.message_from_bytes(f.read_bytes(), policy=default) for f in files]
    return [m for m in parsed if isinstance(m, EmailMessage)]


def subjects(path: Path) -> list[str]:
    return [str(m["Subject"]) for m in owner_mail(path)]


def test_a_firing_skipped_beyond_the_grace_alerts_the_owner_once(
    clinic: Path, running: list[SchedulerService]
) -> None:
    back = datetime(2026, 12, 1, 16, 0, tzinfo=SYDNEY)  # seven hours late, grace 6 h
    with time_machine.travel(back, tick=True):
        service = _down_then_up(clinic, running)
        skipped = "Skipped: the send set for 2026-12-01T09:00:00+11:00"
        assert wait_for(lambda: skipped in subjects(clinic))
        service.stop()
        start_service(clinic, running).stop()  # a second restart the same day
    assert subjects(clinic).count(skipped) == 1
    assert not (clinic.parent / "outbox" / "massage-and-mental-health").exists()


def test_a_lost_and_regained_lease_alerts_the_owner(
    clinic: Path, running: list[SchedulerService]
) -> None:
    service = start_service(clinic, running)
    engine = make_engine(load_settings(clinic).database_url)
    with engine.begin() as connection:  # the fault: another scheduler takes the lease
        connection.execute(
            update(SchedulerState).values(
                leader="elsewhere:1:x", lease_expires_at=datetime.now(UTC) + timedelta(hours=1)
            )
        )
    assert wait_for(lambda: not service.is_leader)
    assert "The scheduler lost its lock and got it back" not in subjects(clinic)
    with engine.begin() as connection:
        connection.execute(update(SchedulerState).values(leader=None, lease_expires_at=None))
    assert service.wait_until_leader(15)
    assert wait_for(lambda: "The scheduler lost its lock and got it back" in subjects(clinic))
    service.stop()
    engine.dispose()
    [alert] = [m for m in owner_mail(clinic) if "lost its lock" in str(m["Subject"])]
    body = alert.get_body(("plain",))
    assert body is not None and "another scheduler took the lease" in str(body.get_content())  # type: ignore[attr-defined]
