"""Who a live series part skips: anyone who had a catch-up email today, read from its own index.

``live_keep`` asks "who had a catch-up row today?" once, as a set (migration
0017's ``ix_deliveries_catch_up``), instead of once per subscriber through all
their rows. A set read by ``NOT IN`` must hold no NULL: a row whose
subscriber was erased (``subscriber_id`` NULL) would otherwise keep everyone
out. Both databases.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert, select
from sqlalchemy.orm import Session, sessionmaker

from pipeline.store.catch_up import Day, live_keep
from pipeline.store.db import make_engine, make_sessionmaker, migrate
from pipeline.store.models import Campaign, Delivery, DeliveryStatus, Subscriber, SubscriberStatus
from tests.databases import PostgresServer

START = datetime(2027, 1, 11, 13, 0, tzinfo=UTC)
TODAY = Day(start=START, end=START + timedelta(days=1), slot=START + timedelta(hours=9))


@pytest.fixture(params=["sqlite", "postgresql"])
def sessions(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / uuid.uuid4().hex}.db"
    else:
        server: PostgresServer = request.getfixturevalue("postgres_server")
        url = server.create_database()
    engine = make_engine(url)
    migrate(engine)
    yield make_sessionmaker(engine)
    engine.dispose()


def _kept(sessions: sessionmaker[Session]) -> set[str]:
    with sessions() as session:
        return set(
            session.scalars(
                select(Subscriber.email)
                .where(Subscriber.status == SubscriberStatus.ACTIVE)
                .where(live_keep(None, TODAY))
            )
        )


def test_a_catch_up_email_today_skips_that_reader_only(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        ids = {
            email: session.scalar(
                insert(Subscriber).values(email=email, status="active").returning(Subscriber.id)
            )
            for email in ("today@example.com", "yesterday@example.com", "live@example.com")
        }
        part = session.scalar(
            insert(Campaign)
            .values(slug="part-1", subject="s", html="h", text="t", transport="outbox")
            .returning(Campaign.id)
        )
        rows = [
            (ids["today@example.com"], TODAY.slot),
            (ids["yesterday@example.com"], TODAY.slot - timedelta(days=1)),
            (ids["live@example.com"], None),
            (None, TODAY.slot),  # an erased reader's catch-up row of today
        ]
        session.execute(
            insert(Delivery),
            [
                {
                    "campaign_id": part,
                    "subscriber_id": subscriber,
                    "status": DeliveryStatus.SENT,
                    "catch_up_at": slot,
                }
                for subscriber, slot in rows
            ],
        )
    assert _kept(sessions) == {"yesterday@example.com", "live@example.com"}


def test_with_no_catch_up_row_today_everyone_is_kept(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        session.execute(
            insert(Subscriber),
            [{"email": f"r{i}@example.com", "status": "active"} for i in range(3)],
        )
    assert _kept(sessions) == {f"r{i}@example.com" for i in range(3)}
