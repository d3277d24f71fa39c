"""Fixtures of the subscriber-list tests: a migrated SQLite file per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from pipeline.store.db import make_sessionmaker
from tests.subscribers.lists import Sessions, migrated_database


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    """A migrated SQLite database in a file of its own."""
    engine, _ = migrated_database(tmp_path / "t.db")
    yield engine
    engine.dispose()


@pytest.fixture
def sessions(engine: Engine) -> Sessions:
    """The session factory the functions under test take."""
    return make_sessionmaker(engine)
