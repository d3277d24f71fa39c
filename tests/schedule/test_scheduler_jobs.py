"""What each scheduler firing does, with ``now`` passed in: the next due article, an empty
queue, pause, one-offs (waiting, held, missed, cancelled, already sent) and resuming."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from pipeline.errors import PipelineError
from pipeline.schedule.jobs import resume_interrupted, send_due, send_scheduled_due
from pipeline.store.db import make_engine, make_sessionmaker, migrate
from pipeline.store.models import ScheduledSendStatus
from pipeline.store.oneoffs import OneOffStore
from pipeline.store.scheduler_state import SchedulerStateStore
from tests.helpers import SAMPLE_SLUG
from tests.schedule.scheduler_fixtures import (  # noqa: F401 - registers the fixtures
    config_fixture,
    log_info_fixture,
)
from tests.schedule.scheduler_helpers import (
    PART_1,
    PART_3,
    SUBSCRIBERS,
    SYDNEY,
    messages,
    open_folder,
    outbox_files,
)

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
