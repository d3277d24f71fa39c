"""Turns for the ledger's writes on SQLite: senders queue for the one writer instead of polling.

SQLite lets one connection write at a time. A writer that finds the file
locked sleeps and tries again (the busy timeout), in steps of up to 100 ms,
and is not woken when the lock comes free: with a dozen lanes in two
processes claiming and recording batches, lanes slept while nobody wrote
(measured: a 50,000-recipient send at 150 ms per request took 1.9-2.1 s
polling, 1.7 s taking turns). So the runner's writes (claim, record, renew,
give back) first take a turn: a thread lock within the process, then an
exclusive ``flock`` on ``<database>-writers`` beside the file across
processes, both woken the moment the holder lets go.

This is only about waiting well: SQLite's own lock still decides who
writes, and writers that take no turn (the web app, the scheduler) go on
as before. The turn is always taken before the transaction begins and held
until it ends, so it cannot deadlock with SQLite's lock. PostgreSQL locks
rows, not the database, and needs none; nor does a database in memory or a
system without ``flock`` (there the thread lock alone is kept).
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

from sqlalchemy import Engine

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


class WriteTurns:
    """A turn to write to one SQLite file, for threads and processes alike."""

    def __init__(self, path: str) -> None:
        self._path = f"{path}-writers"
        self._forked()

    def _forked(self) -> None:
        # Also run in a forked child before it does anything else: a lock or
        # a descriptor inherited from the parent is the parent's turn, not ours.
        inherited: int | None = getattr(self, "_fd", None)
        if inherited is not None:
            os.close(inherited)  # the parent's flock stays: it holds its own descriptor
        self._lock = threading.Lock()
        self._fd: int | None = None

    @contextmanager
    def turn(self) -> Iterator[None]:
        """Hold the turn for the body (one write transaction)."""
        with self._lock:
            if fcntl is None:
                yield
                return
            if self._fd is None:
                self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)


#: One per database file in this process, so every ledger on it shares the thread lock.
_TURNS: dict[str, WriteTurns] = {}
_TURNS_LOCK = threading.Lock()


def _after_fork() -> None:
    global _TURNS_LOCK
    _TURNS_LOCK = threading.Lock()
    for turns in _TURNS.values():
        turns._forked()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)


def write_turns(engine: Engine) -> WriteTurns | None:
    """The turns for ``engine``'s database file; None where no turns are needed."""
    if engine.dialect.name != "sqlite":
        return None
    database = engine.url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    path = os.path.abspath(database)
    with _TURNS_LOCK:
        if path not in _TURNS:
            _TURNS[path] = WriteTurns(path)
        return _TURNS[path]


def turn(turns: WriteTurns | None) -> AbstractContextManager[None]:
    """``turns.turn()``, or nothing to wait for."""
    return turns.turn() if turns is not None else contextlib.nullcontext()
