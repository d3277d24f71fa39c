"""An outcome's write touches no index: claims in flight kept in a table of their own.

Revision ID: 0019
Revises: 0018
Create Date: 2027-02-11

Writing a row's outcome (``sending`` -> ``sent``) was most of a PostgreSQL
send's database work: ``ix_deliveries_pending`` and ``ix_deliveries_in_flight``
named ``status`` in their predicates, so every outcome wrote a new row version
into every index, on another page. Now no index names a column an outcome
changes: pending rows are indexed by ``claimed_at IS NULL`` (the new CHECK says
a pending row has no claim), rows by claim token (kept after the outcome), and
which claims are in flight lives in ``in_flight_claims``. On PostgreSQL the
table fills its pages to 40% only (fillfactor 40), so that every row's new
version, which is longer (a message id, a time), fits beside the old one on
its page: a HOT update, no index entry at all. (At 50, a third of them did
not fit, and a record of 1,000 rows took twice as long.)

Existing data: pending rows that kept a claim (``send --retry-failed`` left
them so) lose it; each claim with rows in flight gets its row, and a row in
flight without a token or time (none should exist) is marked uncertain, as a
crash would leave it. Written by hand to equal ``pipeline/store/models.py``
(``tests/store/test_store.py`` checks).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_CHECK = "status <> 'pending' OR claimed_at IS NULL"


def upgrade() -> None:
    """The claims table (filled from rows in flight), the CHECK, the two indexes, the fillfactor."""
    op.execute(
        "UPDATE deliveries SET claimed_at = NULL, claim_token = NULL, claimed_by = NULL"
        " WHERE status = 'pending' AND claimed_at IS NOT NULL"
    )
    op.execute(
        "UPDATE deliveries SET status = 'uncertain',"
        " error = 'the sender stopped while this message was in flight'"
        " WHERE status = 'sending' AND (claim_token IS NULL OR claimed_at IS NULL)"
    )
    op.create_table(
        "in_flight_claims",
        sa.Column("token", sa.String(64), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("claimed_by", sa.String(200), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("token"),
    )
    op.create_index("ix_in_flight_claims_campaign", "in_flight_claims", ["campaign_id"])
    op.execute(
        "INSERT INTO in_flight_claims (token, campaign_id, claimed_by, claimed_at)"
        " SELECT claim_token, max(campaign_id), coalesce(max(claimed_by), 'unknown'),"
        " max(claimed_at) FROM deliveries WHERE status = 'sending' GROUP BY claim_token"
    )
    op.drop_index("ix_deliveries_in_flight", table_name="deliveries")
    op.drop_index("ix_deliveries_pending", table_name="deliveries")
    if op.get_bind().dialect.name == "sqlite":
        # SQLite adds a CHECK only by rebuilding the table (Alembic's batch mode).
        with op.batch_alter_table("deliveries") as batch:
            batch.create_check_constraint("ck_deliveries_pending_unclaimed", sa.text(_CHECK))
    else:
        op.create_check_constraint("ck_deliveries_pending_unclaimed", "deliveries", _CHECK)
        # Room on each page for an outcome's new row version (applies to pages
        # written from now on; VACUUM FULL would rewrite the old ones).
        op.execute("ALTER TABLE deliveries SET (fillfactor = 40)")
    op.create_index(
        "ix_deliveries_pending",
        "deliveries",
        ["campaign_id", "id"],
        sqlite_where=sa.text("claimed_at IS NULL"),
        postgresql_where=sa.text("claimed_at IS NULL"),
    )
    op.create_index(
        "ix_deliveries_claim_token",
        "deliveries",
        ["campaign_id", "claim_token"],
        sqlite_where=sa.text("claim_token IS NOT NULL"),
        postgresql_where=sa.text("claim_token IS NOT NULL"),
    )


def downgrade() -> None:
    """Back to 0018's indexes; the claims table goes (its rows' state is on the rows)."""
    op.drop_index("ix_deliveries_claim_token", table_name="deliveries")
    op.drop_index("ix_deliveries_pending", table_name="deliveries")
    if op.get_bind().dialect.name == "sqlite":
        with op.batch_alter_table("deliveries") as batch:
            batch.drop_constraint("ck_deliveries_pending_unclaimed", type_="check")
    else:
        op.drop_constraint("ck_deliveries_pending_unclaimed", "deliveries", type_="check")
        op.execute("ALTER TABLE deliveries RESET (fillfactor)")
    op.create_index(
        "ix_deliveries_pending",
        "deliveries",
        ["campaign_id", "id"],
        sqlite_where=sa.text("status = 'pending'"),
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_index(
        "ix_deliveries_in_flight",
        "deliveries",
        ["campaign_id", "claim_token"],
        sqlite_where=sa.text("status = 'sending'"),
        postgresql_where=sa.text("status = 'sending'"),
    )
    op.drop_index("ix_in_flight_claims_campaign", table_name="in_flight_claims")
    op.drop_table("in_flight_claims")
