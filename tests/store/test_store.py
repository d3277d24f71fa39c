"""The schema: Alembic migrations against the models, on a real SQLite file."""

from __future__ import annotations

import io
import multiprocessing
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect
from sqlalchemy.exc import IntegrityError

from pipeline.errors import PipelineError
from pipeline.store.db import alembic_config, make_engine, migrate
from pipeline.store.models import Base


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    """A migrated SQLite database in a file of its own."""
    engine = make_engine(f"sqlite:///{tmp_path / 't.db'}")
    migrate(engine)
    return engine


def _not_apscheduler(name: str | None, type_: str, _parents: object) -> bool:
    # APScheduler creates and owns its job table; it is not part of our models.
    return not (type_ == "table" and (name or "").startswith("apscheduler_"))


def _drift(engine: Engine, metadata: sa.MetaData) -> list[object]:
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "include_name": _not_apscheduler}
        )
        return list(compare_metadata(context, metadata))


def test_migration_creates_every_table_and_index(engine: Engine) -> None:
    inspector = inspect(engine)
    assert {"subscribers", "campaigns", "deliveries"} <= set(inspector.get_table_names())
    indexes = {i["name"] for t in ("subscribers", "deliveries") for i in inspector.get_indexes(t)}
    assert {
        "ix_subscribers_status_id",
        "ix_deliveries_pending",
        "ix_deliveries_claim_token",
    } <= indexes
    foreign_keys = {
        fk["referred_table"]: fk["options"].get("ondelete")
        for fk in inspector.get_foreign_keys("deliveries")
    }
    assert foreign_keys == {}  # migration 0016: kept by pipeline.store.ledger_links


def test_migrated_schema_equals_the_models(engine: Engine) -> None:
    # The guard against drift: a model change without a migration fails here.
    assert _drift(engine, Base.metadata) == []


def test_the_drift_check_would_notice_a_difference(engine: Engine) -> None:
    changed = sa.MetaData()
    for table in Base.metadata.tables.values():
        table.to_metadata(changed)
    changed.tables["subscribers"].append_column(sa.Column("phone", sa.String(40)))
    diffs = _drift(engine, changed)
    assert any("phone" in repr(diff) for diff in diffs)


def test_migrating_twice_changes_nothing(engine: Engine) -> None:
    with engine.connect() as connection:
        before = connection.exec_driver_sql("SELECT sql FROM sqlite_master ORDER BY name").all()
    migrate(engine)
    with engine.connect() as connection:
        after = connection.exec_driver_sql("SELECT sql FROM sqlite_master ORDER BY name").all()
        version = connection.exec_driver_sql("SELECT version_num FROM alembic_version").all()
    assert after == before
    assert version == [(ScriptDirectory.from_config(alembic_config()).get_current_head(),)]


def test_status_columns_reject_unknown_values(engine: Engine) -> None:
    with pytest.raises(IntegrityError), engine.begin() as connection:
        connection.exec_driver_sql(
            "INSERT INTO subscribers (email, status, tags, fields, created_at, updated_at)"
            " VALUES ('a@example.com', 'bogus', '[]', '{}', '2025-01-01', '2025-01-01')"
        )


def test_a_database_from_a_newer_release_is_a_clear_error(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.exec_driver_sql("UPDATE alembic_version SET version_num = '9999'")
    with pytest.raises(PipelineError, match="cannot migrate the database"):
        migrate(engine)


def test_the_migration_renders_for_postgresql() -> None:
    # Offline mode needs no server: it proves the DDL compiles for PostgreSQL.
    config = alembic_config()
    config.set_main_option("sqlalchemy.url", "postgresql://user@localhost/newsletter")
    config.output_buffer = io.StringIO()
    command.upgrade(config, "head", sql=True)
    sql = config.output_buffer.getvalue()
    assert "CREATE TABLE deliveries" in sql
    assert "TIMESTAMP WITH TIME ZONE" in sql
    assert "ON DELETE SET NULL" in sql
    assert "CONSTRAINT delivery_status CHECK" in sql


def _migrate_in_child(url: str, start: multiprocessing.synchronize.Barrier) -> None:
    engine = make_engine(url)
    start.wait()
    migrate(engine)
    engine.dispose()


def test_processes_starting_together_migrate_one_at_a_time(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(3)
    children = [context.Process(target=_migrate_in_child, args=(url, start)) for _ in range(3)]
    for child in children:
        child.start()
    for child in children:
        child.join(timeout=120)
    assert [child.exitcode for child in children] == [0, 0, 0]
    assert _drift(make_engine(url), Base.metadata) == []
