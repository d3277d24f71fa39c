"""The catch-up policy (pipeline.schedule.catch_up) and the three places that follow it.

APScheduler decides recurring misfires itself, from the options the policy
derives; these tests hold it, the scheduler's log and one-off sends to the
same answer, edge included. APScheduler's misfire check reads the real
clock, so that one test freezes it with time-machine.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import time_machine
from apscheduler.events import EVENT_JOB_MISSED
from apscheduler.executors.base import run_job
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.schedulers.background import BackgroundScheduler

from pipeline.config import ScheduleSettings, load_settings
from pipeline.newsletter import Newsletter
from pipeline.schedule.catch_up import apscheduler_options, decide, decide_missed
from pipeline.schedule.jobs import send_scheduled_due
from pipeline.schedule.recurring import RECURRING_JOB, install_recurring
from pipeline.store.models import ScheduledSendStatus
from pipeline.store.oneoffs import OneOffStore
from tests.helpers import SAMPLE_SLUG, copy_sample_folder

SYDNEY = ZoneInfo("Australia/Sydney")
T = datetime(2026, 12, 1, 9, 0, tzinfo=SYDNEY)
GRACE = timedelta(hours=6)


def test_a_firing_inside_the_grace_runs_once() -> None:
    catch_up = decide(T, T + timedelta(hours=2), GRACE)
    assert catch_up.runs and catch_up.missed == 1
    assert catch_up.reason == "within the catch-up grace of 6:00:00"
    assert decide(T, T + GRACE, GRACE).runs  # the edge itself still runs
    assert decide(T, T - timedelta(seconds=1), GRACE).runs  # not late at all


def test_a_firing_beyond_the_grace_is_skipped_and_says_why() -> None:
    catch_up = decide(T, T + timedelta(hours=7, microseconds=400), GRACE)
    assert not catch_up.runs
    assert catch_up.late_seconds == timedelta(hours=7)
    assert catch_up.reason == "missed by 7:00:00, beyond the catch-up grace of 6:00:00"
    # Any fraction of a second past the grace is beyond it (APScheduler's comparison).
    assert not decide(T, T + GRACE + timedelta(milliseconds=500), GRACE).runs


def test_missed_firings_coalesce_into_the_latest() -> None:
    firings = [T, T + timedelta(weeks=1), T + timedelta(weeks=2)]
    within = decide_missed(firings, firings[-1] + timedelta(hours=1), GRACE)
    assert within is not None
    assert within.runs and within.missed == 3 and within.scheduled_for == firings[-1]
    beyond = decide_missed(firings, firings[-1] + timedelta(hours=7), GRACE)
    assert beyond is not None and not beyond.runs and beyond.missed == 3
    assert decide_missed([], T, GRACE) is None


def test_apscheduler_options_come_from_the_grace() -> None:
    assert apscheduler_options(timedelta(minutes=90)) == {
        "coalesce": True,
        "misfire_grace_time": 5400,
    }


@pytest.mark.parametrize(
    "late",
    [timedelta(0), GRACE, GRACE + timedelta(microseconds=1), GRACE + timedelta(seconds=1)],
)
def test_apscheduler_skips_exactly_what_the_policy_skips(late: timedelta) -> None:
    ran: list[datetime] = []
    scheduler = BackgroundScheduler(timezone=SYDNEY, jobstores={"default": MemoryJobStore()})
    scheduler.start(paused=True)
    try:
        job = scheduler.add_job(
            ran.append, "date", run_date=T, args=[T], **apscheduler_options(GRACE)
        )
        with time_machine.travel(T + late, tick=False):
            events = run_job(job, "default", [T], "tests.catch_up")
            policy = decide(T, datetime.now(UTC), GRACE)
    finally:
        scheduler.shutdown(wait=False)
    missed = [event for event in events if event.code == EVENT_JOB_MISSED]
    assert policy.runs == (ran == [T]) == (not missed)


def test_the_stored_recurring_job_follows_an_edited_grace() -> None:
    scheduler = BackgroundScheduler(timezone=SYDNEY, jobstores={"default": MemoryJobStore()})
    scheduler.start(paused=True)
    try:
        install_recurring(scheduler, ScheduleSettings(catch_up_grace="6h"), "/x.toml", "default")
        job = scheduler.get_job(RECURRING_JOB)
        assert (job.coalesce, job.misfire_grace_time) == (True, 6 * 3600)
        install_recurring(scheduler, ScheduleSettings(catch_up_grace="1h"), "/x.toml", "default")
        kept = scheduler.get_job(RECURRING_JOB)
        assert kept.next_run_time == job.next_run_time  # kept, not replaced
        assert kept.misfire_grace_time == 3600
    finally:
        scheduler.shutdown(wait=False)


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("NEWSLETTER_DATABASE_URL", "NEWSLETTER_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NEWSLETTER_SECRET_KEY", "catch-up-test-secret")
    return copy_sample_folder(tmp_path / "clinic")


def test_a_one_off_follows_the_same_policy_to_the_fraction_of_a_second(
    config: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="pipeline.scheduler")
    newsletter = Newsletter(load_settings(config))
    ones = OneOffStore(newsletter.sessions)
    ones.schedule(SAMPLE_SLUG, T, T - timedelta(days=1))
    moment = T + GRACE + timedelta(milliseconds=500)  # APScheduler would skip this firing
    try:
        assert send_scheduled_due(str(config), now=moment) == []
        [one] = ones.all()
    finally:
        newsletter.close()
    assert one.status is ScheduledSendStatus.MISSED
    assert one.note == f"{decide(T, moment, GRACE).reason}; not sent"
    assert one.note == "missed by 6:00:00, beyond the catch-up grace of 6:00:00; not sent"
