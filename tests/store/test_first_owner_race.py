"""The first-run setup link under a race: two setups at once make exactly one owner.

Two threads run :func:`pipeline.store.users.create_first_owner` on a real
database (a SQLite file, then PostgreSQL). The first is held inside its
transaction, its owner inserted but not committed, until the second is inside the
database too: on PostgreSQL until the server shows the second waiting on a lock
(or the second has finished, which is the bug: it did not wait), on SQLite until
the second has issued its insert (SQLite's one writer orders them). The web
route's race (tests/web/test_setup_race.py) uses the same :class:`Race`.
Only then does the first commit. Every wait is bounded.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, event
from sqlalchemy.orm import Session, sessionmaker

from pipeline.store.db import make_engine, make_sessionmaker, migrate
from pipeline.store.users import (
    UserRecord,
    count_users,
    create_first_owner,
    list_users,
    setup_link_used,
)
from tests.databases import until_waiting_on_a_lock

ANN, BOB = "ann@clinic.example", "bob@clinic.example"
NOW = datetime(2026, 11, 3, 9, 0, tzinfo=UTC)
WAIT = 15.0  # seconds: the bound on every wait below


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    migrate(engine)
    yield engine
    engine.dispose()


class Race:
    """Two setups at once: the one creating ``first_email``'s owner is held open, its owner
    inserted but not committed, until the other is inside :func:`create_first_owner`."""

    def __init__(self, engine: Engine, first_email: str) -> None:
        self.engine = engine
        self.first_email = first_email
        self.sessions: sessionmaker[Session] = make_sessionmaker(engine)
        self.holder: int | None = None  # the thread holding the first setup open
        self.first_holding = threading.Event()
        self.second_started = threading.Event()  # the other is taking the setup's lock
        self.release = threading.Event()
        self.results: dict[str, Any] = {}
        self.errors: list[BaseException] = []
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)

    def close(self) -> None:
        event.remove(self.engine, "before_cursor_execute", self._before)
        event.remove(self.engine, "after_cursor_execute", self._after)

    def _before(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        # The first statement of create_first_owner: PostgreSQL's lock, or SQLite's
        # insert that claims the single writer (the route's own checks come before it).
        other = self.first_holding.is_set() and threading.get_ident() != self.holder
        if other and statement.startswith(("SELECT pg_advisory_xact_lock", "INSERT INTO used_")):
            self.second_started.set()

    def _after(self, _conn: Any, _cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if statement.startswith("INSERT INTO users") and self.first_email in repr(params):
            self.holder = threading.get_ident()
            self.first_holding.set()
            assert self.release.wait(WAIT), "the race was never released"

    def _call(self, name: str, setup: Callable[[], Any]) -> None:
        try:
            self.results[name] = setup()
        except BaseException as error:  # reported by run(), not lost in the thread
            self.errors.append(error)

    def run(self, first: Callable[[], Any], second: Callable[[], Any]) -> None:
        """``first`` must be the setup that creates ``first_email``'s owner."""
        threads = {
            name: threading.Thread(target=self._call, args=(name, setup), name=name)
            for name, setup in (("first", first), ("second", second))
        }
        threads["first"].start()
        try:
            assert self.first_holding.wait(WAIT), "the first setup never inserted its owner"
            threads["second"].start()
            assert self.second_started.wait(WAIT), "the second setup never reached the store"
            if self.engine.dialect.name == "postgresql":
                until_waiting_on_a_lock(self.engine, threads["second"], WAIT)
        finally:
            self.release.set()
            for thread in threads.values():
                thread.join(WAIT)
        assert not any(t.is_alive() for t in threads.values()), "a setup never finished"
        assert not self.errors, self.errors


@pytest.fixture
def race(engine: Engine) -> Iterator[Race]:
    racing = Race(engine, ANN)
    yield racing
    racing.close()


def _setup(race: Race, nonce: str, email: str) -> Callable[[], UserRecord | None]:
    return lambda: create_first_owner(race.sessions, nonce, email, "hash", NOW)


def test_two_posts_of_one_link_make_one_owner(race: Race) -> None:
    race.run(_setup(race, "nonce-1", ANN), _setup(race, "nonce-1", BOB))
    assert race.results["first"] is not None and race.results["second"] is None
    assert [(u.email, u.role) for u in list_users(race.sessions)] == [(ANN, "owner")]
    assert setup_link_used(race.sessions, "nonce-1")


def test_two_links_at_once_make_one_owner(race: Race) -> None:
    race.run(_setup(race, "nonce-1", ANN), _setup(race, "nonce-2", BOB))
    assert race.results["first"] is not None and race.results["second"] is None
    assert count_users(race.sessions) == 1
    # The losing link's row rolled back with its refusal: only the winner is recorded.
    assert setup_link_used(race.sessions, "nonce-1")
    assert not setup_link_used(race.sessions, "nonce-2")


def test_a_link_after_the_first_owner_adds_nobody(engine: Engine) -> None:
    sessions = make_sessionmaker(engine)
    assert create_first_owner(sessions, "nonce-1", "ann@clinic.example", "h", NOW) is not None
    assert create_first_owner(sessions, "nonce-1", "bob@clinic.example", "h", NOW) is None
    assert create_first_owner(sessions, "nonce-2", "cat@clinic.example", "h", NOW) is None
    assert count_users(sessions) == 1 and not setup_link_used(sessions, "nonce-2")
