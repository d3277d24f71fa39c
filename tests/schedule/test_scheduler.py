"""The scheduler service in-process: clock tests, catch-up, leadership, one-offs, pause.

APScheduler reads the real clock (its misfire check calls ``datetime.now``), so
the tests that run a real scheduler move the whole process's clock with
time-machine (``tick=True``: time then flows from the chosen moment). Everything
else passes ``now`` in. Every wait is bounded.
"""

from __future__ import annotations

import itertools
import json
import logging
import re
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import time_machine
from sqlalchemy import inspect, update

from pipeline.cli.schedule import parse_local_time, schedule_listing
from pipeline.config import ScheduleSettings, load_settings
from pipeline.errors import PipelineError
from pipeline.logs import JsonFormatter
from pipeline.newsletter import Newsletter
from pipeline.schedule.crontab import next_firings
from pipeline.schedule.jobs import resume_interrupted, send_due, send_scheduled_due
from pipeline.schedule.service import SchedulerService, Timing
from pipeline.schedule.triggers import recurring_trigger
from pipeline.store.db import make_engine, make_sessionmaker, migrate
from pipeline.store.models import Base, CampaignStatus, ScheduledSendStatus, SchedulerState
from pipeline.store.oneoffs import OneOffStore
from pipeline.store.scheduler_state import SchedulerStateStore
from pipeline.subscribers import import_csv
from tests.helpers import SAMPLE_SLUG, FixedClock, copy_sample_folder
from tests.store.test_store import _drift

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


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
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


@pytest.fixture
def services() -> Iterator[list[SchedulerService]]:
    """Services a test started; any still running are stopped at the end."""
    started: list[SchedulerService] = []
    yield started
    for service in started:
        if service._thread.is_alive():
            service.stop(wait=True)


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


@pytest.fixture(autouse=True)
def _log_info(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="pipeline.scheduler")


# -- the trigger: crontab meaning and DST -------------------------------------------


def test_tuesday_nine_sydney_stays_at_nine_across_both_dst_changes() -> None:
    trigger = recurring_trigger(ScheduleSettings(cron="0 9 * * tue", timezone="Australia/Sydney"))
    for start in (datetime(2027, 3, 20, tzinfo=UTC), datetime(2026, 9, 20, tzinfo=UTC)):
        firings = list(next_firings(trigger, start, 5))
        assert [f.strftime("%a %H:%M") for f in firings] == ["Tue 09:00"] * 5
        gaps = {(b.date() - a.date()).days for a, b in itertools.pairwise(firings)}
        assert gaps == {7}  # one a week: none skipped, none doubled
        offsets = [f.utcoffset() for f in firings]
        assert len(set(offsets)) == 2  # the change happened inside the window
    april = [f.isoformat() for f in next_firings(trigger, datetime(2027, 3, 27, tzinfo=UTC), 2)]
    assert april == ["2027-03-30T09:00:00+11:00", "2027-04-06T09:00:00+10:00"]


@pytest.mark.parametrize(
    "start", [datetime(2027, 4, 1, tzinfo=SYDNEY), datetime(2026, 10, 1, tzinfo=SYDNEY)]
)
def test_a_time_inside_the_changing_hour_fires_once_a_day(start: datetime) -> None:
    # 02:30 happens twice when Sydney falls back (2027-04-04) and not at all when
    # it springs forward (2026-10-04): either way exactly one send that day.
    trigger = recurring_trigger(ScheduleSettings(cron="30 2 * * *", timezone="Australia/Sydney"))
    firings = list(next_firings(trigger, start, 7))
    days = [f.astimezone(SYDNEY).date() for f in firings]
    assert days == [start.date() + timedelta(days=n) for n in range(7)]
    instants = [f.astimezone(UTC) for f in firings]
    assert instants == sorted(set(instants))


def test_a_sunday_crontab_zero_is_sunday() -> None:
    trigger = recurring_trigger(ScheduleSettings(cron="0 9 * * 0", timezone="Australia/Sydney"))
    firings = list(next_firings(trigger, datetime(2026, 11, 25, tzinfo=UTC), 3))
    assert [f.strftime("%a %H:%M") for f in firings] == ["Sun 09:00"] * 3


# -- the real scheduler against a controlled clock -----------------------------------


def test_a_sunday_crontab_fires_on_sunday(
    config: Path, services: list[SchedulerService], caplog: pytest.LogCaptureFixture
) -> None:
    set_schedule(config, "0 9 * * 0")
    with time_machine.travel(datetime(2026, 11, 29, 8, 59, 58, tzinfo=SYDNEY), tick=True):
        service = start_service(config, services)
        assert wait_for(lambda: len(outbox_files(config)) == SUBSCRIBERS)
        service.stop()
    newsletter = open_folder(config)
    [campaign] = newsletter.ledger.campaigns()
    started = campaign.created_at.astimezone(SYDNEY)
    assert (started.strftime("%A %H:%M"), campaign.slug) == ("Sunday 09:00", PART_1)
    assert "firing: recurring send scheduled for 2026-11-29T09:00:00+11:00" in messages(caplog)


def test_the_stored_schedule_fires_at_nine_local_after_dst_ends(
    config: Path, services: list[SchedulerService], caplog: pytest.LogCaptureFixture
) -> None:
    with time_machine.travel(datetime(2027, 3, 31, 12, 0, tzinfo=SYDNEY), tick=True):
        service = start_service(config, services)
        assert service.next_firing() == datetime(2027, 4, 6, 9, 0, tzinfo=SYDNEY)
        service.stop()
    # A restart on the first Tuesday after clocks went back (now +10:00).
    with time_machine.travel(datetime(2027, 4, 6, 8, 59, 58, tzinfo=SYDNEY), tick=True):
        service = start_service(config, services)
        assert wait_for(lambda: len(outbox_files(config)) == SUBSCRIBERS)
        assert wait_for(lambda: service.next_firing() is not None)
        following = service.next_firing()
        service.stop()
    assert following is not None
    assert following.isoformat() == "2027-04-13T09:00:00+10:00"
    assert campaigns(config) == [PART_1]
    assert "firing: recurring send scheduled for 2027-04-06T09:00:00+10:00" in messages(caplog)


def _down_then_up(config: Path, services: list[SchedulerService]) -> SchedulerService:
    """Run the scheduler on Monday 2026-11-30 noon and stop it; start it again now."""
    with time_machine.travel(datetime(2026, 11, 30, 12, 0, tzinfo=SYDNEY), tick=True):
        service = start_service(config, services)
        assert service.next_firing() == datetime(2026, 12, 1, 9, 0, tzinfo=SYDNEY)
        service.stop()
    return start_service(config, services)


def test_a_firing_missed_within_the_grace_runs_once_after_a_restart(
    config: Path, services: list[SchedulerService], caplog: pytest.LogCaptureFixture
) -> None:
    back = datetime(2026, 12, 1, 11, 0, tzinfo=SYDNEY)  # two hours late, grace 6 h
    with time_machine.travel(back, tick=True):
        service = _down_then_up(config, services)
        assert wait_for(lambda: len(outbox_files(config)) == SUBSCRIBERS)
        assert wait_for(lambda: service.next_firing() is not None)
        following = service.next_firing()
        service.stop()
    assert campaigns(config) == [PART_1]
    assert following == datetime(2026, 12, 8, 9, 0, tzinfo=SYDNEY)
    log = messages(caplog)
    assert "missed 1 firing(s)" in log and "it runs once now" in log
    assert "firing: recurring send scheduled for 2026-12-01T09:00:00+11:00 (catching up" in log


def test_a_firing_missed_beyond_the_grace_is_skipped_and_logged(
    config: Path, services: list[SchedulerService], caplog: pytest.LogCaptureFixture
) -> None:
    back = datetime(2026, 12, 1, 16, 0, tzinfo=SYDNEY)  # seven hours late, grace 6 h
    with time_machine.travel(back, tick=True):
        service = _down_then_up(config, services)
        assert wait_for(lambda: "missed firing at" in messages(caplog))
        following = service.next_firing()
        service.stop()
    assert outbox_files(config) == [] and campaigns(config) == []
    assert following == datetime(2026, 12, 8, 9, 0, tzinfo=SYDNEY)
    log = messages(caplog)
    assert "missed firing at 2026-12-01T09:00:00+11:00: beyond the catch-up grace" in log
    assert "skipped" in log


def test_the_grace_period_comes_from_the_settings(
    config: Path, services: list[SchedulerService], caplog: pytest.LogCaptureFixture
) -> None:
    set_schedule(config, "0 9 * * tue", grace="1h")
    back = datetime(2026, 12, 1, 11, 0, tzinfo=SYDNEY)  # two hours late: beyond 1 h
    with time_machine.travel(back, tick=True):
        service = _down_then_up(config, services)
        assert wait_for(lambda: "missed firing at" in messages(caplog))
        service.stop()
    assert campaigns(config) == []


def test_several_missed_firings_coalesce_into_one_send(
    config: Path, services: list[SchedulerService], caplog: pytest.LogCaptureFixture
) -> None:
    back = datetime(2026, 12, 15, 10, 0, tzinfo=SYDNEY)  # missed 1, 8 and 15 December
    with time_machine.travel(back, tick=True):
        service = _down_then_up(config, services)
        assert wait_for(lambda: len(outbox_files(config)) == SUBSCRIBERS)
        assert wait_for(lambda: service.next_firing() is not None)
        following = service.next_firing()
        service.stop()
    assert campaigns(config) == [PART_1]  # one send, not three
    assert following == datetime(2026, 12, 22, 9, 0, tzinfo=SYDNEY)
    assert "missed 3 firing(s)" in messages(caplog)


def test_a_restart_resumes_a_campaign_left_half_sent(
    config: Path, services: list[SchedulerService], caplog: pytest.LogCaptureFixture
) -> None:
    newsletter = open_folder(config)
    campaign, _ = newsletter.plan(SAMPLE_SLUG)
    newsletter.ledger.mark_running(campaign.id, datetime.now(UTC))  # then the sender died
    service = start_service(config, services)
    assert wait_for(lambda: len(outbox_files(config)) == SUBSCRIBERS)
    service.stop()
    counts = newsletter.ledger.counts(campaign)
    assert (counts.planned, counts.sent) == (SUBSCRIBERS, SUBSCRIBERS)
    assert newsletter.ledger.get_campaign(SAMPLE_SLUG).status is CampaignStatus.DONE  # type: ignore[union-attr]
    assert "resuming an interrupted campaign" in messages(caplog)
    assert len(outbox_files(config)) == SUBSCRIBERS  # nothing sent twice


def test_a_one_off_set_while_running_is_picked_up(
    config: Path, services: list[SchedulerService]
) -> None:
    service = start_service(config, services)
    newsletter = open_folder(config)
    now = datetime.now(UTC)
    OneOffStore(newsletter.sessions).schedule(SAMPLE_SLUG, now + timedelta(seconds=1), now)
    assert wait_for(lambda: len(outbox_files(config)) == SUBSCRIBERS)
    service.stop()
    [one] = OneOffStore(newsletter.sessions).all()
    assert one.status is ScheduledSendStatus.FIRED
    assert campaigns(config) == [SAMPLE_SLUG]


# -- leadership -----------------------------------------------------------------------


def test_a_second_service_waits_and_takes_over_when_the_first_stops(
    config: Path, services: list[SchedulerService], caplog: pytest.LogCaptureFixture
) -> None:
    first = start_service(config, services)
    second = start_service(config, services, lead=False)
    assert wait_for(lambda: "another scheduler holds the lock" in messages(caplog))
    assert not second.is_leader
    first.stop()
    assert second.wait_until_leader(15)
    second.stop()


def test_a_leader_that_loses_its_lease_stops_firing(
    config: Path, services: list[SchedulerService], caplog: pytest.LogCaptureFixture
) -> None:
    service = start_service(config, services)
    engine = make_engine(load_settings(config).database_url)
    with engine.begin() as connection:
        connection.execute(
            update(SchedulerState).values(
                leader="elsewhere:1:x", lease_expires_at=datetime.now(UTC) + timedelta(hours=1)
            )
        )
    assert wait_for(lambda: not service.is_leader)
    assert service.next_firing() is None
    assert "no longer the leader (another scheduler took the lease)" in messages(caplog)
    with engine.begin() as connection:
        connection.execute(update(SchedulerState).values(leader=None, lease_expires_at=None))
    assert service.wait_until_leader(15)
    service.stop()
    engine.dispose()


def test_the_lease_is_one_guarded_update(database_url: str) -> None:
    engine = make_engine(database_url)
    migrate(engine)
    state = SchedulerStateStore(make_sessionmaker(engine))
    t0 = datetime(2026, 12, 1, tzinfo=UTC)
    lease = timedelta(seconds=60)
    assert state.acquire("a", t0, lease)  # creates the row on first use
    assert not state.acquire("b", t0 + timedelta(seconds=10), lease)
    assert state.acquire("a", t0 + timedelta(seconds=30), lease)  # renewal
    assert not state.acquire("b", t0 + timedelta(seconds=89), lease)
    assert state.acquire("b", t0 + timedelta(seconds=91), lease)  # a's lease ran out
    assert not state.acquire("a", t0 + timedelta(seconds=92), lease)  # a must stop firing
    assert state.status().leader_alive(t0 + timedelta(seconds=92))
    state.release("a")  # not a's to give up
    assert state.status().leader == "b"
    state.release("b")
    assert state.acquire("a", t0 + timedelta(seconds=93), lease)
    engine.dispose()


def test_pause_is_stored_and_reported_once(database_url: str) -> None:
    engine = make_engine(database_url)
    migrate(engine)
    state = SchedulerStateStore(make_sessionmaker(engine))
    now = datetime(2026, 12, 1, tzinfo=UTC)
    assert not state.paused()
    assert state.set_paused(True, now)
    assert not state.set_paused(True, now)
    assert state.paused() and state.status().paused_at == now
    assert state.set_paused(False, now)
    assert not state.paused()
    engine.dispose()


def test_the_job_table_does_not_confuse_the_drift_check(
    config: Path, services: list[SchedulerService]
) -> None:
    start_service(config, services).stop()
    engine = make_engine(load_settings(config).database_url)
    assert "apscheduler_jobs" in inspect(engine).get_table_names()
    migrate(engine)  # still migrates
    assert _drift(engine, Base.metadata) == []
    engine.dispose()


def test_the_scheduler_runs_on_postgresql(
    config: Path, services: list[SchedulerService], postgres_server: object
) -> None:
    url = postgres_server.create_database()  # type: ignore[attr-defined]
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace('url = "sqlite:///newsletter.db"', f'url = "{url}"'))
    newsletter = open_folder(config)
    import_csv(newsletter.sessions, config.parent / "sample-subscribers.csv")
    now = datetime.now(UTC)
    OneOffStore(newsletter.sessions).schedule(SAMPLE_SLUG, now + timedelta(seconds=1), now)
    service = start_service(config, services)
    assert wait_for(lambda: len(outbox_files(config)) == SUBSCRIBERS)
    service.stop()
    assert [c.slug for c in newsletter.ledger.campaigns()] == [SAMPLE_SLUG]
    newsletter.close()


# -- what each firing does (now passed in) --------------------------------------------


T = datetime(2026, 12, 1, 9, 0, tzinfo=SYDNEY)


def test_each_firing_sends_the_next_due_article_and_never_one_twice(
    config: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sent = []
    for week in range(4):
        report = send_due(str(config), now=T + timedelta(weeks=week))
        sent.append(report.counts.slug if report else None)
    assert sent == [PART_1, SAMPLE_SLUG, PART_3, None]
    assert len(outbox_files(config)) == 3 * SUBSCRIBERS
    log = messages(caplog)
    assert "schedule fired but no queued article is due: nothing sent" in log
    assert f"campaign {PART_1}: done: 5 planned, 5 sent, 0 failed" in log


def test_an_empty_queue_logs_a_clear_warning_and_sends_nothing(
    config: Path, caplog: pytest.LogCaptureFixture
) -> None:
    for article in (config.parent / "articles").glob("*.md"):
        article.unlink()
    assert send_due(str(config), now=T) is None
    assert outbox_files(config) == []
    [record] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "no queued article is due" in record.getMessage()


def test_a_paused_firing_sends_nothing(config: Path, caplog: pytest.LogCaptureFixture) -> None:
    newsletter = open_folder(config)
    SchedulerStateStore(newsletter.sessions).set_paused(True, T)
    assert send_due(str(config), now=T) is None
    assert outbox_files(config) == []
    assert "schedule paused" in messages(caplog)


def test_an_article_with_a_one_off_waits_for_it_and_so_do_its_later_parts(
    config: Path,
) -> None:
    newsletter = open_folder(config)
    OneOffStore(newsletter.sessions).schedule(PART_1, T + timedelta(weeks=2), T)
    # Part 1 waits for its one-off; parts 2 and 3 may not overtake it.
    assert send_due(str(config), now=T) is None
    assert send_scheduled_due(str(config), now=T + timedelta(weeks=2, minutes=1)) == [PART_1]
    report = send_due(str(config), now=T + timedelta(weeks=3))
    assert report is not None and report.counts.slug == SAMPLE_SLUG


def test_pause_holds_a_one_off_and_resume_sends_it_within_the_grace(config: Path) -> None:
    newsletter = open_folder(config)
    ones = OneOffStore(newsletter.sessions)
    state = SchedulerStateStore(newsletter.sessions)
    ones.schedule(SAMPLE_SLUG, T, T - timedelta(days=1))
    state.set_paused(True, T - timedelta(hours=1))
    assert send_scheduled_due(str(config), now=T + timedelta(minutes=5)) == []
    assert [one.status for one in ones.all()] == [ScheduledSendStatus.PENDING]
    state.set_paused(False, T + timedelta(hours=1))
    assert send_scheduled_due(str(config), now=T + timedelta(hours=1)) == [SAMPLE_SLUG]
    assert len(outbox_files(config)) == SUBSCRIBERS
    assert send_scheduled_due(str(config), now=T + timedelta(hours=2)) == []  # fired once


def test_a_one_off_beyond_the_grace_is_marked_missed(
    config: Path, caplog: pytest.LogCaptureFixture
) -> None:
    newsletter = open_folder(config)
    ones = OneOffStore(newsletter.sessions)
    ones.schedule(SAMPLE_SLUG, T, T - timedelta(days=1))
    assert send_scheduled_due(str(config), now=T + timedelta(hours=7)) == []
    [one] = ones.all()
    assert one.status is ScheduledSendStatus.MISSED and "catch-up grace" in (one.note or "")
    assert outbox_files(config) == []
    assert "schedule it again" in messages(caplog)


def test_a_cancelled_one_off_never_fires(config: Path) -> None:
    newsletter = open_folder(config)
    ones = OneOffStore(newsletter.sessions)
    ones.schedule(SAMPLE_SLUG, T, T - timedelta(days=1))
    assert ones.cancel(SAMPLE_SLUG)
    assert not ones.cancel(SAMPLE_SLUG)
    assert send_scheduled_due(str(config), now=T + timedelta(minutes=1)) == []
    assert outbox_files(config) == []


def test_a_one_off_for_an_article_already_sent_sends_nothing_twice(config: Path) -> None:
    newsletter = open_folder(config)
    newsletter.send(SAMPLE_SLUG)
    OneOffStore(newsletter.sessions).schedule(SAMPLE_SLUG, T, T - timedelta(days=1))
    assert send_scheduled_due(str(config), now=T + timedelta(minutes=1)) == []
    [one] = OneOffStore(newsletter.sessions).all()
    assert one.status is ScheduledSendStatus.FIRED and "already sent" in (one.note or "")
    assert len(outbox_files(config)) == SUBSCRIBERS


def test_a_fired_one_off_cannot_be_set_again(database_url: str) -> None:
    engine = make_engine(database_url)
    migrate(engine)
    ones = OneOffStore(make_sessionmaker(engine))
    first = ones.schedule("a", T, T - timedelta(days=1))
    moved = ones.schedule("a", T + timedelta(hours=1), T - timedelta(days=1))
    assert moved.id == first.id and [o.at for o in ones.pending()] == [T + timedelta(hours=1)]
    assert [o.slug for o in ones.due(T + timedelta(hours=1))] == ["a"]
    assert ones.claim(first.id, T) and not ones.claim(first.id, T)  # exactly one firer
    with pytest.raises(PipelineError, match="already fired"):
        ones.schedule("a", T + timedelta(days=1), T)
    engine.dispose()


def test_resume_waits_while_paused(config: Path, caplog: pytest.LogCaptureFixture) -> None:
    newsletter = open_folder(config)
    campaign, _ = newsletter.plan(SAMPLE_SLUG)
    newsletter.ledger.mark_running(campaign.id, T)
    SchedulerStateStore(newsletter.sessions).set_paused(True, T)
    assert resume_interrupted(str(config), now=T) == []
    assert "not resuming interrupted campaign(s)" in messages(caplog)
    SchedulerStateStore(newsletter.sessions).set_paused(False, T)
    assert resume_interrupted(str(config), now=T) == [SAMPLE_SLUG]


# -- planning, listing and parsing ----------------------------------------------------


def test_the_listing_shows_five_tuesdays_with_their_offsets(config: Path) -> None:
    newsletter = open_folder(config, now=datetime(2027, 3, 20, tzinfo=UTC))
    listing = schedule_listing(newsletter, 5)
    assert [f.at.isoformat() for f in listing.firings] == [
        "2027-03-23T09:00:00+11:00",
        "2027-03-30T09:00:00+11:00",
        "2027-04-06T09:00:00+10:00",
        "2027-04-13T09:00:00+10:00",
        "2027-04-20T09:00:00+10:00",
    ]
    assert [f.slug for f in listing.firings] == [PART_1, SAMPLE_SLUG, PART_3, None, None]


def test_queue_shows_one_offs_and_hides_plans_while_paused(config: Path) -> None:
    newsletter = open_folder(config, now=datetime(2026, 11, 25, tzinfo=UTC))
    at = datetime(2026, 11, 28, 10, 30, tzinfo=SYDNEY)
    OneOffStore(newsletter.sessions).schedule(PART_1, at, datetime(2026, 11, 25, tzinfo=UTC))
    planned = {e.slug: e.planned_at for e in newsletter.queue()}
    assert planned[PART_1] == at
    assert planned[SAMPLE_SLUG] == datetime(2026, 12, 1, 9, 0, tzinfo=SYDNEY)
    SchedulerStateStore(newsletter.sessions).set_paused(True, datetime(2026, 11, 25, tzinfo=UTC))
    assert {e.planned_at for e in newsletter.queue()} == {None}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-12-02 09:00", "2026-12-02T09:00:00+11:00"),
        ("2026-12-02 09:00:30", "2026-12-02T09:00:30+11:00"),
        ("2026-06-02T09:00", "2026-06-02T09:00:00+10:00"),
        ("2027-04-04 02:30", "2027-04-04T02:30:00+11:00"),  # repeated: the first one
    ],
)
def test_one_off_times_are_clinic_time(text: str, expected: str) -> None:
    assert parse_local_time(text, SYDNEY).isoformat() == expected


@pytest.mark.parametrize(
    ("text", "problem"),
    [("2026-10-04 02:30", "does not exist"), ("tomorrow", "expected"), ("2026-12-02", "expected")],
)
def test_bad_one_off_times_are_clear_errors(text: str, problem: str) -> None:
    with pytest.raises(PipelineError, match=problem):
        parse_local_time(text, SYDNEY)


def test_the_grace_setting_accepts_hours_minutes_and_plain_minutes() -> None:
    assert ScheduleSettings(catch_up_grace="6h").catch_up_grace == timedelta(hours=6)
    assert ScheduleSettings(catch_up_grace="1h30m").catch_up_grace == timedelta(minutes=90)
    assert ScheduleSettings(catch_up_grace=45).catch_up_grace == timedelta(minutes=45)
    assert ScheduleSettings().catch_up_grace == timedelta(hours=6)
    with pytest.raises(ValueError, match="duration"):
        ScheduleSettings(catch_up_grace="soon")


def test_json_log_lines_carry_the_extra_fields() -> None:
    record = logging.LogRecord("pipeline.scheduler", logging.INFO, "x", 1, "sent %d", (5,), None)
    record.slug = "hip-pain"
    entry = json.loads(JsonFormatter().format(record))
    assert entry["message"] == "sent 5" and entry["slug"] == "hip-pain"
    assert entry["level"] == "INFO" and entry["logger"] == "pipeline.scheduler"
    assert datetime.fromisoformat(entry["time"]).tzinfo is not None
