"""The daily catch-up pass is set-based: its statements do not grow with the list.

Issue 14 ("Scale"): the pass plans in one ``INSERT ... SELECT`` per series and
part, with no per-subscriber loop in Python. Counted here at the driver
(SQLAlchemy's ``before_cursor_execute`` on the engine, so every statement of
the pass is seen, ``ANALYZE`` included): the same statements for 10 and 200
people at mixed positions, on SQLite and PostgreSQL.

The pass's predicate was rewritten for speed (the limit solved for the count
in Python, no ``CASE``); the second test holds it to the original formula,
kept below as the reference, over lists and limits chosen by hypothesis.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, and_, case, delete, event, exists, func, insert, or_, select
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql.elements import ColumnElement

from pipeline.store.catch_up import (
    SLACK,
    SeriesTrack,
    _emailed_on,
    _has_row,
    due_for_part,
    plan_pass,
)
from pipeline.store.db import make_engine, make_sessionmaker, migrate
from pipeline.store.models import Campaign, Delivery, DeliveryStatus, Subscriber, SubscriberStatus
from tests.databases import PostgresServer
from tests.store.catch_up_population import DAY, SLOT, build_population


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_database(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], str]:
    """A factory of fresh, empty databases (one per list size)."""
    if request.param == "sqlite":
        return lambda: f"sqlite:///{tmp_path / uuid.uuid4().hex}.db"
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return server.create_database


def _database(url: str) -> tuple[Engine, sessionmaker[Session]]:
    engine = make_engine(url)
    migrate(engine)
    return engine, make_sessionmaker(engine)


def _statements_of_a_pass(url: str, people: int, limit: int | None) -> tuple[list[str], int, int]:
    """The SQL a real pass runs over ``people`` at mixed positions; rows planned, rows due."""
    engine, sessions = _database(url)
    try:
        population = build_population(sessions, people)
        track = population.track
        if limit is not None:
            track = dataclasses.replace(track, limit=limit)
        statements: list[str] = []

        def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
            statements.append(statement)

        event.listen(engine, "before_cursor_execute", count)
        try:
            planned = plan_pass(sessions, [track], DAY)
        finally:
            event.remove(engine, "before_cursor_execute", count)
        return statements, len(planned), population.expected_due
    finally:
        engine.dispose()


# limit None: the default 10 (more than the 5 sent parts); 3: the limit binds,
# and the pass counts each person's catch-up sends (still in the same statement).
@pytest.mark.parametrize("limit", [None, 3])
def test_the_pass_runs_the_same_statements_for_10_and_200_people(
    fresh_database: Callable[[], str], limit: int | None
) -> None:
    small, planned_small, due_small = _statements_of_a_pass(fresh_database(), 10, limit)
    large, planned_large, due_large = _statements_of_a_pass(fresh_database(), 200, limit)
    # The pass did real work for both lists, and more for the larger one...
    assert 0 < planned_small < planned_large
    if limit is None:
        assert (planned_small, planned_large) == (due_small, due_large)
    # ...with the very same statements: one INSERT ... SELECT per part, none per person.
    assert len(small) == len(large)
    assert small == large
    inserts = [s for s in large if s.lstrip().upper().startswith("INSERT INTO DELIVERIES")]
    assert len(inserts) == 5  # the five sent parts of the one series


# -- the rewritten predicate against the original formula ---------------------------

PARTS = 5
#: Per part: not held, held live, or a catch-up send this many days before today's slot.
holding = st.one_of(st.none(), st.just("live"), st.sampled_from([0, 1, 2, 3, 6, 20]))
person = st.tuples(
    st.lists(holding, min_size=PARTS, max_size=PARTS),
    st.sampled_from([SubscriberStatus.ACTIVE] * 4 + [SubscriberStatus.UNSUBSCRIBED]),
)


def _reference(track: SeriesTrack, index: int) -> ColumnElement[bool]:
    """The pass's predicate as first written (issue 14): ``budget = max(limit - c, 1)`` in SQL."""
    ids = list(track.campaign_ids)
    row = Delivery
    caught_so_far = (
        select(func.count())
        .where(
            row.subscriber_id == Subscriber.id,
            row.campaign_id.in_(ids),
            row.catch_up_at.is_not(None),
        )
        .scalar_subquery()
    )
    budget = case((track.limit - caught_so_far > 1, track.limit - caught_so_far), else_=1)
    remaining = len(ids) - index
    too_recent = exists().where(
        row.subscriber_id == Subscriber.id,
        row.campaign_id.in_(ids),
        row.catch_up_at > DAY.slot - track.every + SLACK,
    )
    conditions = [
        Subscriber.status == SubscriberStatus.ACTIVE,
        ~_has_row(ids[index:]),
        ~too_recent,
        ~_emailed_on(DAY),
    ]
    if index == 0:
        conditions.append(budget >= remaining)
    else:
        holds_previous = _has_row([ids[index - 1]])
        conditions.append(
            or_(
                and_(holds_previous, budget >= remaining),
                and_(~holds_previous, budget == remaining),
            )
        )
    return and_(*conditions)


@pytest.fixture
def one_database(database_url: str) -> Iterator[sessionmaker[Session]]:
    engine, sessions = _database(database_url)
    yield sessions
    engine.dispose()


def _write(
    sessions: sessionmaker[Session], people: list[tuple[list[Any], SubscriberStatus]]
) -> list[int]:
    """Replace the list with ``people`` and return the five parts' campaign ids."""
    with sessions.begin() as session:
        for table in (Delivery, Subscriber, Campaign):
            session.execute(delete(table))
        ids = [
            int(
                session.execute(
                    insert(Campaign)
                    .values(
                        slug=f"part-{part}",
                        subject=".",
                        html=".",
                        text=".",
                        transport="outbox",
                        created_at=SLOT - timedelta(weeks=PARTS + 1 - part),
                    )
                    .returning(Campaign.id)
                ).scalar_one()
            )
            for part in range(1, PARTS + 1)
        ]
        long_ago = datetime(2026, 1, 1, tzinfo=UTC)
        for n, (holdings, status) in enumerate(people):
            subscriber = session.execute(
                insert(Subscriber)
                .values(email=f"p{n}@example.com", status=status, tags=[], fields={})
                .returning(Subscriber.id)
            ).scalar_one()
            for campaign_id, held in zip(ids, holdings, strict=True):
                if held is None:
                    continue
                at = long_ago if held == "live" else SLOT - timedelta(days=held)
                session.execute(
                    insert(Delivery).values(
                        campaign_id=campaign_id,
                        subscriber_id=subscriber,
                        status=DeliveryStatus.SENT,
                        attempts=1,
                        sent_at=at,
                        catch_up_at=None if held == "live" else at,
                    )
                )
    return ids


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(people=st.lists(person, min_size=1, max_size=12), limit=st.integers(1, 7))
def test_the_predicate_chooses_exactly_whom_the_original_formula_chose(
    one_database: sessionmaker[Session],
    people: list[tuple[list[Any], SubscriberStatus]],
    limit: int,
) -> None:
    ids = _write(one_database, people)
    track = SeriesTrack(series="s", campaign_ids=tuple(ids), every=timedelta(days=2), limit=limit)
    with one_database() as session:
        for index in range(PARTS):
            chosen = set(
                session.scalars(select(Subscriber.id).where(due_for_part(track, index, DAY)))
            )
            expected = set(session.scalars(select(Subscriber.id).where(_reference(track, index))))
            assert chosen == expected, (index, limit)
