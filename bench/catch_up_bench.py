"""The catch-up row of ``make bench``: the daily pass planning for 100,000 people.

The list is the mix of ``tests/store/catch_up_population.py`` (the one the
set-based test counts statements on): a six-part series with parts 1-5 sent,
40% holding every part, 5% each behind by 1-5 parts, 10% with a catch-up send
yesterday (too recent for "2d"), 10% with their last 2 days ago, the rest done
catching up, unsubscribed or unconfirmed. It is written in bulk, outside the
timing. Timed: :func:`pipeline.store.catch_up.plan_pass` as the daily job runs
it (commit and PostgreSQL's ``ANALYZE`` included), no sending. Between rounds
the rows it planned are deleted, so every round plans the same 35% again.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import common  # noqa: F401  (puts the repository on sys.path)
from sqlalchemy import delete

from pipeline.store.catch_up import plan_pass
from pipeline.store.db import make_engine, make_sessionmaker, migrate
from pipeline.store.models import Delivery
from tests.store.catch_up_population import DAY, build_population

#: Target for the pass at 100,000 people. It runs once a day at the send time,
#: and while it plans it holds the pass's lock and, on SQLite, the database's
#: one write lock: sends, sign-ups and webhooks wait (up to the 30 s busy
#: timeout of ``pipeline.store.db``). 5 s keeps a 6x margin under that wait on
#: a busy machine, and delays the day's catch-up emails by no more than that.
TARGET_SECONDS = 5.0


@dataclass(frozen=True)
class CatchUpRun:
    """The timed passes over one database: seconds per round, rows planned, rows due."""

    seconds: tuple[float, ...]
    planned: int
    people: int
    build_seconds: float

    @property
    def best(self) -> float:
        return min(self.seconds)


def bench_catch_up(database_url: str, people: int, rounds: int = 3) -> CatchUpRun:
    """Build the list on ``database_url``, then time ``rounds`` real passes over it."""
    engine = make_engine(database_url)
    try:
        migrate(engine)
        sessions = make_sessionmaker(engine)
        start = time.perf_counter()
        population = build_population(sessions, people)
        build_seconds = time.perf_counter() - start
        seconds: list[float] = []
        for _ in range(rounds):
            start = time.perf_counter()
            planned = plan_pass(sessions, [population.track], DAY)
            seconds.append(time.perf_counter() - start)
            if len(planned) != population.expected_due:
                raise SystemExit(
                    f"catch-up benchmark: the pass planned {len(planned)} sends, "
                    f"{population.expected_due} were due"
                )
            with sessions.begin() as session:  # back to the list as built
                session.execute(delete(Delivery).where(Delivery.catch_up_at == DAY.slot))
        return CatchUpRun(tuple(seconds), population.expected_due, people, build_seconds)
    finally:
        engine.dispose()
