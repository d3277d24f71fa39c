"""Real databases for tests: SQLite files, and a PostgreSQL server started here.

The PostgreSQL server is created with ``initdb`` in a temporary folder and
listens on 127.0.0.1 only, once per test session; every test gets a fresh
database in it. Where PostgreSQL is not installed the PostgreSQL half of a test
is skipped with the reason, except under ``REQUIRE_ALL=1`` (CI), where that is
a failure.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

REQUIRE_ALL = os.environ.get("REQUIRE_ALL") == "1"
_LOCK_WAITERS = (
    "SELECT count(*) FROM pg_stat_activity "
    "WHERE datname = current_database() AND wait_event_type = 'Lock'"
)


def _pg_bindir() -> Path | None:
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(candidates[-1]).parent if candidates else None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def unavailable(reason: str) -> None:
    """Skip, or fail under REQUIRE_ALL=1."""
    if REQUIRE_ALL:
        pytest.fail(f"REQUIRE_ALL=1 but {reason}")
    pytest.skip(reason)


class PostgresServer:
    """A throwaway PostgreSQL cluster owned by this test session."""

    def __init__(self, bindir: Path, root: Path) -> None:
        self.bindir = bindir
        self.root = root
        self.data = root / "data"
        self.port = _free_port()
        # initdb refuses to run as root: run the server as the postgres user then.
        self._as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    def _run(self, *args: str) -> None:
        subprocess.run(
            [*self._as_user, *args], check=True, capture_output=True, text=True, timeout=120
        )

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if self._as_user:
            shutil.chown(self.root, user="postgres", group="postgres")
        self._run(
            str(self.bindir / "initdb"),
            "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-locale",
        )  # fmt: skip
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            "-c max_connections=200"
        )
        self._run(
            str(self.bindir / "pg_ctl"), "-D", str(self.data), "-o", options,
            "-l", str(self.root / "server.log"), "-w", "-t", "60", "start",
        )  # fmt: skip

    def stop(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "stop")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        import psycopg

        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(
            f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres", autocommit=True
        ) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One PostgreSQL server for the whole session (skipped where none is installed)."""
    bindir = _pg_bindir()
    if bindir is None:
        unavailable("PostgreSQL is not installed (no initdb found)")
        raise AssertionError("unreachable")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        unavailable("psycopg is not installed")
    # Not under pytest's tmp folder: that is private to root, and the server may
    # run as the postgres user.
    root = Path(tempfile.mkdtemp(prefix="newsletter-pg-"))
    root.chmod(0o755)
    server = PostgresServer(bindir, root / "cluster")
    try:
        server.start()
    except (subprocess.CalledProcessError, OSError) as error:
        detail = getattr(error, "stderr", "") or str(error)
        unavailable(f"PostgreSQL did not start: {detail.strip()[:300]}")
    yield server
    server.stop()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database: a SQLite file, then a PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'test.db'}"
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return server.create_database()


def until_waiting_on_a_lock(engine: Engine, other: threading.Thread, wait: float) -> None:
    """Poll PostgreSQL until ``other`` waits on a lock, or has ended (a race test's bug).

    For tests that hold one writer open and need the other blocked behind it
    before letting the first commit; never longer than ``wait`` seconds.
    """
    deadline = time.monotonic() + wait
    with engine.connect() as watcher:
        while other.is_alive():  # ended without waiting: the outcome shows what it did
            if watcher.exec_driver_sql(_LOCK_WAITERS).scalar():
                return
            watcher.rollback()  # a fresh look at pg_stat_activity each time
            assert time.monotonic() < deadline, "the other writer neither waited nor ended"
            other.join(0.02)
