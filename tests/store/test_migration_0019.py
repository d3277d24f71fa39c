"""Migration 0019 on a ledger in use: claims in flight listed, pending rows unclaimed.

Both databases.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy.exc import IntegrityError

from pipeline.store.db import alembic_config, make_engine

NOW = datetime(2027, 2, 11, 9, 0, tzinfo=UTC)

_ROWS = [
    # id, status, claim_token, claimed_at, claimed_by
    (1, "sent", None, NOW, "host-a"),  # an outcome written before 0019: its token cleared
    (2, "pending", "old", NOW, "host-a"),  # `send --retry-failed` left its claim on it
    (3, "sending", "t1", NOW, "host-a"),
    (4, "sending", "t1", NOW, "host-a"),
    (5, "sending", "t2", NOW, "host-b"),
    (6, "sending", None, None, None),  # in flight without a claim: should not exist
    (7, "pending", None, None, None),
]


def test_migration_0019_lists_claims_in_flight_and_unclaims_pending_rows(
    database_url: str,
) -> None:
    engine = make_engine(database_url)
    try:
        with engine.begin() as connection:
            command.upgrade(alembic_config(connection), "0018")
            connection.execute(
                sa.text(
                    "INSERT INTO campaigns (id, slug, subject, preheader, html, text, status,"
                    " transport, created_at) VALUES (1, 'a', 's', '', 'h', 't', 'running',"
                    " 'outbox', :t)"
                ),
                {"t": NOW},
            )
            for row_id, status, token, at, by in _ROWS:
                connection.execute(
                    sa.text(
                        "INSERT INTO deliveries (id, campaign_id, subscriber_id, status,"
                        " claim_token, claimed_at, claimed_by, attempts)"
                        " VALUES (:id, 1, :id, :status, :token, :at, :by, 1)"
                    ),
                    {"id": row_id, "status": status, "token": token, "at": at, "by": by},
                )
        with engine.begin() as connection:
            command.upgrade(alembic_config(connection), "0019")
        with engine.connect() as connection:
            held = connection.execute(
                sa.text(
                    "SELECT token, campaign_id, claimed_by FROM in_flight_claims ORDER BY token"
                )
            ).all()
            rows = {
                row_id: status
                for row_id, status in connection.execute(
                    sa.text("SELECT id, status FROM deliveries")
                )
            }
            unclaimed = connection.execute(
                sa.text("SELECT claimed_at, claim_token FROM deliveries WHERE id = 2")
            ).one()
        assert [tuple(r) for r in held] == [("t1", 1, "host-a"), ("t2", 1, "host-b")]
        assert rows[6] == "uncertain" and rows[2] == rows[7] == "pending"
        assert tuple(unclaimed) == (None, None)
        # The CHECK: a pending row with a claim would sit where no claim looks.
        with pytest.raises(IntegrityError), engine.begin() as connection:
            connection.execute(
                sa.text("UPDATE deliveries SET claimed_at = :t WHERE id = 7"), {"t": NOW}
            )
        with engine.begin() as connection:
            command.downgrade(alembic_config(connection), "0018")
        with engine.connect() as connection:
            tables = sa.inspect(connection).get_table_names()
            indexes = {i["name"] for i in sa.inspect(connection).get_indexes("deliveries")}
        assert "in_flight_claims" not in tables
        assert {"ix_deliveries_pending", "ix_deliveries_in_flight"} <= indexes
    finally:
        engine.dispose()
