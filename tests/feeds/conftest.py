"""Fixtures shared by the feed import tests: an empty articles folder and a database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from pipeline.store.db import make_engine, make_sessionmaker, migrate


@pytest.fixture
def articles(tmp_path: Path) -> Path:
    folder = tmp_path / "articles"
    folder.mkdir()
    return folder


@pytest.fixture
def sessions(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(f"sqlite:///{tmp_path / 'feeds.db'}")
    migrate(engine)
    yield make_sessionmaker(engine)
    engine.dispose()
