"""Scheduler leadership: one leader at a time through a guarded lease, taking over and
losing it; the stored pause flag; the job table and the drift check; PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import inspect, update

from pipeline.config import load_settings
from pipeline.schedule.service import SchedulerService
from pipeline.store.db import make_engine, make_sessionmaker, migrate
from pipeline.store.models import Base, SchedulerState
from pipeline.store.oneoffs import OneOffStore
from pipeline.store.scheduler_state import SchedulerStateStore
from pipeline.subscribers import import_csv
from tests.helpers import SAMPLE_SLUG
from tests.schedule.scheduler_fixtures import (  # noqa: F401 - registers the fixtures
    config_fixture,
    log_info_fixture,
    services_fixture,
)
from tests.schedule.scheduler_helpers import (
    SUBSCRIBERS,
    messages,
    open_folder,
    outbox_files,
    start_service,
    wait_for,
)
from tests.store.test_store import _drift

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
