"""Helpers the ledger-claim tests share (the ``newsletter`` fixture: conftest.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from pipeline.config import load_settings
from pipeline.newsletter import Newsletter
from pipeline.store.snapshot import write_all_rows
from pipeline.subscribers import import_csv
from tests.helpers import FixedClock, copy_sample_folder


def _newsletter(tmp_path: Path, database_url: str) -> Newsletter:
    config = copy_sample_folder(tmp_path / "clinic")
    settings = load_settings(
        config,
        environ={"NEWSLETTER_SECRET_KEY": "test-secret", "NEWSLETTER_DATABASE_URL": database_url},
    )
    nl = Newsletter(settings, clock=FixedClock(datetime.now(UTC)))
    import_csv(nl.sessions, tmp_path / "clinic" / "sample-subscribers.csv")
    return nl


def _clock(nl: Newsletter) -> FixedClock:
    assert isinstance(nl.clock, FixedClock)
    return nl.clock


def rows_written(nl: Newsletter, campaign_id: int) -> None:
    """Every person's ledger row, ``pending``, now (claims would write them as they go).

    For tests that shape rows before claiming them (some made catch-up rows).
    """
    with nl.sessions.begin() as session:
        write_all_rows(session, campaign_id)
