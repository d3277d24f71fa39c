"""Engine and session set-up; the one place that knows about SQL dialects."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
import weakref
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.util import CommandError
from sqlalchemy import Connection, Engine, Insert, create_engine, event
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Result
from sqlalchemy.orm import Session, sessionmaker

from pipeline.errors import PipelineError

MIGRATIONS_DIR = Path(__file__).parent / "migrations"

# Any fixed 64-bit number works: it only has to be the same for every process
# migrating the same PostgreSQL database.
_PG_MIGRATION_LOCK = 7_202_611_401

# Alembic keeps the running migration in module globals (``alembic.context``,
# ``alembic.op``), so two threads of one process must not migrate at once.
_THREAD_LOCK = threading.Lock()


def make_engine(url: str) -> Engine:
    """Create an engine; SQLite gets WAL, foreign keys and a busy timeout.

    A process forked from this one (``[sending] processes``) starts with an
    empty pool: connections are never shared across a fork.
    """
    engine = _make_engine(url)
    _fresh_pool_after_fork(engine)
    return engine


def _fresh_pool_after_fork(engine: Engine) -> None:
    # close=False: the parent still owns those connections; the child only
    # forgets them. A weak reference, so a closed engine is not kept alive.
    ref = weakref.ref(engine)

    def forget() -> None:
        alive = ref()
        if alive is not None:
            alive.dispose(close=False)

    os.register_at_fork(after_in_child=forget)


def _make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            _enable_wal(cursor)
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


def _enable_wal(cursor: Any) -> None:
    """Switch the file to WAL (readers never wait for a sender), once per file.

    WAL is stored in the file, so later connections only read it. Switching
    needs a moment alone with the file and does not wait on the busy timeout,
    so processes starting together (scheduler, web, sender) retry briefly.
    """
    for attempt in range(50):
        try:
            if cursor.execute("PRAGMA journal_mode").fetchone()[0] == "wal":
                return
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or attempt == 49:
                raise
            time.sleep(0.05 * (attempt + 1))


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    """A session factory whose objects stay readable after commit."""
    return sessionmaker(engine, expire_on_commit=False)


def rowcount(result: Result[Any]) -> int:
    """How many rows a DML statement changed (it returns a CursorResult; others count 0)."""
    return int(getattr(result, "rowcount", 0) or 0)


def refresh_statistics(sessions: sessionmaker[Session], *tables: str) -> None:
    """Show PostgreSQL's planner a bulk change now (``ANALYZE``), not at autovacuum's next pass.

    Right after an import or a campaign's snapshot, a table never analyzed
    looks nearly empty to the planner, and the ledger's claims and joins go
    from milliseconds to a fifth of a second each. SQLite's planner needs no
    statistics for these queries, so there it does nothing. ``tables`` are
    our own table names, never user input.
    """
    with sessions.begin() as session:
        connection = session.connection()
        if connection.dialect.name != "postgresql":
            return
        for table in tables:
            connection.exec_driver_sql(f"ANALYZE {table}")


def insert_new_only(dialect: str, model: type[Any]) -> Insert:
    """``INSERT INTO <model> ... ON CONFLICT DO NOTHING``: rows whose unique key exists are skipped.

    The same SQL on SQLite (3.24 and later) and PostgreSQL, built by each
    dialect's own ``insert`` (``dialect``: an engine's ``dialect.name``). Far
    cheaper than a ``NOT EXISTS`` per row, which PostgreSQL may plan as a
    pass over the whole table per statement.
    """
    if dialect == "postgresql":
        return postgresql_insert(model).on_conflict_do_nothing()
    return sqlite_insert(model).on_conflict_do_nothing()


class GrowingTable:
    """Statistics refreshed (:func:`refresh_statistics`) each time a bulk write doubles tables.

    A long write in chunks that looks rows up as it goes (an import checks
    each chunk's addresses in one ``IN`` query) is planned by PostgreSQL for
    the table as it last analyzed it, nearly empty, and reads the whole table
    for each chunk: a first import of 100,000 subscribers took 28 s (a
    second, after the ANALYZE at its end, 3 s), and the time grew with the
    square of the list. Refreshed at ``first`` rows written and at each
    doubling after, the same import takes 4 s, for a handful of ANALYZEs.
    """

    def __init__(self, sessions: sessionmaker[Session], *tables: str, first: int) -> None:
        self._sessions = sessions
        self._tables = tables
        self._next = first

    def grew_to(self, written: int) -> None:
        """The write has now added ``written`` rows in all."""
        if written >= self._next:
            refresh_statistics(self._sessions, *self._tables)
            self._next = 2 * written


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic config for the bundled migrations; no ``alembic.ini`` involved.

    With ``connection``, ``env.py`` migrates over it. Developers can pass the
    result to ``alembic.command.revision(..., autogenerate=True)`` to write the
    next migration.
    """
    config = Config()
    # Config values go through ConfigParser interpolation: a literal % in the
    # install path (possible on any OS) must be doubled.
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def migrate(engine: Engine) -> None:
    """Bring the database schema up to date (``alembic upgrade head``).

    Safe to call on every start, from several threads and from several
    processes at once: callers take turns on a lock, and a database already at
    head is left as is.
    """
    try:
        with _THREAD_LOCK, engine.begin() as connection:
            _lock_for_migration(connection)
            command.upgrade(alembic_config(connection), "head")
    except CommandError as error:
        # Typically a database written by a newer release than this one.
        where = engine.url.render_as_string(hide_password=True)
        raise PipelineError(f"cannot migrate the database {where}: {error}") from error


def _lock_for_migration(connection: Connection) -> None:
    """Serialize concurrent migrations (scheduler, web app and workers starting together).

    Without this, two processes finding an empty database would both run
    ``CREATE TABLE`` and one would crash.
    """
    if connection.dialect.name == "sqlite":
        # pysqlite only opens a transaction before DML; BEGIN IMMEDIATE takes
        # the write lock now, so the second process waits (busy timeout) and
        # then reads the version the first one committed.
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    elif connection.dialect.name == "postgresql":
        # Released automatically when the migration transaction ends.
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_MIGRATION_LOCK})")
