"""Initial schema: subscribers, campaigns and the delivery ledger.

Revision ID: 0001
Revises:
Create Date: 2025-01-01

Written by hand to equal ``pipeline/store/models.py``; ``tests/store/test_store.py``
compares the migrated database with the models so the two cannot drift apart.
Enum values are copied here on purpose: a migration must describe the schema as
it was, not as the models say it is today.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _status(name: str, *values: str) -> sa.Enum:
    # Non-native: VARCHAR(16) plus a CHECK naming the allowed values, the same
    # on SQLite and PostgreSQL (no CREATE TYPE to alter when a state is added).
    return sa.Enum(*values, name=name, native_enum=False, length=16, create_constraint=True)


def _utc() -> sa.DateTime:
    # models.UTCDateTime stores through this type.
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create the three tables and their indexes."""
    op.create_table(
        "subscribers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("first_name", sa.String(200), nullable=True),
        sa.Column("last_name", sa.String(200), nullable=True),
        sa.Column(
            "status",
            _status(
                "subscriber_status", "pending", "active", "unsubscribed", "bounced", "complained"
            ),
            nullable=False,
        ),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.Column("source", sa.String(200), nullable=True),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("updated_at", _utc(), nullable=False),
        sa.Column("unsubscribed_at", _utc(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("email"),
    )
    op.create_index("ix_subscribers_status_id", "subscribers", ["status", "id"])

    op.create_table(
        "campaigns",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("slug", sa.String(200), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("preheader", sa.Text(), nullable=False),
        sa.Column("html", sa.Text(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column(
            "status",
            _status("campaign_status", "planned", "running", "done"),
            nullable=False,
        ),
        sa.Column("transport", sa.String(50), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("started_at", _utc(), nullable=True),
        sa.Column("finished_at", _utc(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("slug"),
    )

    op.create_table(
        "deliveries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("subscriber_id", sa.Integer(), nullable=True),
        sa.Column(
            "status",
            _status(
                "delivery_status",
                "pending",
                "sending",
                "sent",
                "failed",
                "uncertain",
                "suppressed",
            ),
            nullable=False,
        ),
        sa.Column("claim_token", sa.String(64), nullable=True),
        sa.Column("claimed_at", _utc(), nullable=True),
        sa.Column("claimed_by", sa.String(200), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("sent_at", _utc(), nullable=True),
        sa.Column("message_id", sa.String(300), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaigns.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["subscriber_id"], ["subscribers.id"], ondelete="SET NULL"),
        sa.UniqueConstraint(
            "campaign_id", "subscriber_id", name="uq_deliveries_campaign_subscriber"
        ),
    )
    op.create_index(
        "ix_deliveries_campaign_status_id", "deliveries", ["campaign_id", "status", "id"]
    )
    op.create_index("ix_deliveries_claim_token", "deliveries", ["claim_token"])


def downgrade() -> None:
    """Drop everything, children first."""
    op.drop_index("ix_deliveries_claim_token", table_name="deliveries")
    op.drop_index("ix_deliveries_campaign_status_id", table_name="deliveries")
    op.drop_table("deliveries")
    op.drop_table("campaigns")
    op.drop_index("ix_subscribers_status_id", table_name="subscribers")
    op.drop_table("subscribers")
