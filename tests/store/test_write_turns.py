"""Turns for the ledger's SQLite writes (pipeline.store.write_turns): one writer at a time,
across threads and forked processes, and none of it on PostgreSQL."""

from __future__ import annotations

import errno
import fcntl
import os
from pathlib import Path

from sqlalchemy import create_engine

from pipeline.store.write_turns import write_turns


def test_one_turn_object_per_file_and_none_for_postgres_or_memory(tmp_path: Path) -> None:
    first = write_turns(create_engine(f"sqlite:///{tmp_path / 'a.db'}"))
    again = write_turns(create_engine(f"sqlite:///{tmp_path / 'a.db'}"))
    other = write_turns(create_engine(f"sqlite:///{tmp_path / 'b.db'}"))
    assert first is not None and first is again and other is not first
    assert write_turns(create_engine("sqlite://")) is None
    assert write_turns(create_engine("postgresql+psycopg://u@127.0.0.1/db")) is None


def _child_sees_the_turn_taken(lock_file: Path) -> int:
    """In a forked child: 0 when another process holds the turn, 1 when it was free."""
    fd = os.open(lock_file, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as error:
        return 0 if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN) else 2
    return 1


def test_a_turn_excludes_other_processes_and_a_fork_starts_with_none(tmp_path: Path) -> None:
    turns = write_turns(create_engine(f"sqlite:///{tmp_path / 'news.db'}"))
    assert turns is not None
    lock_file = tmp_path / "news.db-writers"
    with turns.turn():
        assert lock_file.exists()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child's exit code is the assertion
            code = _child_sees_the_turn_taken(lock_file)
            # The parent held the turn at the fork: the child's copy must not be held.
            if code == 0 and not turns._lock.acquire(blocking=False):
                code = 3
            os._exit(code)
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    # Let go: another process now gets the turn at once.
    pid = os.fork()
    if pid == 0:  # pragma: no cover
        os._exit(0 if _child_sees_the_turn_taken(lock_file) == 1 else 4)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
