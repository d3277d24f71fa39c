"""A first big import on PostgreSQL: the planner must learn the list is growing as it grows.

Each chunk of an import looks its addresses up in one ``IN`` query. Until
the table is analyzed, PostgreSQL plans that lookup for the nearly empty
table it last saw and reads the whole table for every chunk: a first import
of 100,000 rows took 28 s (3,600 rows/s; a second one, after the ANALYZE at
the end of the first, 3 s), and the time grew with the square of the list.
The import now refreshes the statistics each time it has doubled what it
added (100,000 rows: 4 s, and 300,000 took 12.5 s). Which plan PostgreSQL
picks for a few thousand rows is its own business, so the test holds the
rule itself (``pipeline.store.db.GrowingTable``): the ANALYZEs, where they
fall. SQLite's planner needs no statistics for this query, and gets none.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event

from pipeline.store.db import make_engine, make_sessionmaker, migrate
from pipeline.subscribers import import_csv

ROWS = 1_000
CHUNK = 50


def test_statistics_are_refreshed_as_the_import_doubles(tmp_path: Path, database_url: str) -> None:
    engine = make_engine(database_url)
    migrate(engine)
    path = tmp_path / "list.csv"
    path.write_text("email\n" + "".join(f"p{i}@example.com\n" for i in range(ROWS)))
    read_so_far = [0]
    analyzed_at: list[int] = []

    @event.listens_for(engine, "before_cursor_execute")
    def analyze(*args: Any) -> None:
        if str(args[2]).startswith("ANALYZE subscribers"):
            analyzed_at.append(read_so_far[0])

    try:
        report = import_csv(
            make_sessionmaker(engine),
            path,
            chunk_size=CHUNK,
            progress=lambda rows: read_so_far.__setitem__(0, rows),
        )
    finally:
        engine.dispose()
    assert report.added == ROWS
    if engine.dialect.name == "sqlite":
        assert analyzed_at == []
        return
    # progress runs after each chunk's statistics: each ANALYZE is seen at the
    # chunk before the one that doubled the count (100, 200, 400, 800 added),
    # then once at the end.
    assert analyzed_at == [50, 150, 350, 750, 1_000]
