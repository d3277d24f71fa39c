"""The web app's state: consent columns on subscribers, and SendGrid webhook events.

Revision ID: 0004
Revises: 0003
Create Date: 2026-01-03

Written by hand to equal ``pipeline/store/models.py`` (``tests/store/test_store.py``
checks).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_CONSENT_COLUMNS = ("consent_at", "consent_source", "consent_ip", "confirm_sent_at")


def _utc() -> sa.DateTime:
    # models.UTCDateTime stores through this type.
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    """Add the double opt-in columns and create ``webhook_events``."""
    # Nullable columns: ADD COLUMN works in place on SQLite and PostgreSQL alike.
    op.add_column("subscribers", sa.Column("consent_at", _utc(), nullable=True))
    op.add_column("subscribers", sa.Column("consent_source", sa.String(200), nullable=True))
    op.add_column("subscribers", sa.Column("consent_ip", sa.String(45), nullable=True))
    op.add_column("subscribers", sa.Column("confirm_sent_at", _utc(), nullable=True))
    op.create_table(
        "webhook_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sg_event_id", sa.String(100), nullable=False),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("campaign_slug", sa.String(200), nullable=True),
        sa.Column("campaign_id", sa.Integer(), nullable=True),
        sa.Column("delivery_id", sa.Integer(), nullable=True),
        sa.Column("subscriber_id", sa.Integer(), nullable=True),
        sa.Column("occurred_at", _utc(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("raw", sa.JSON(), nullable=False),
        sa.Column("received_at", _utc(), nullable=False),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaigns.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["subscriber_id"], ["subscribers.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("sg_event_id"),
    )
    op.create_index("ix_webhook_events_campaign_event", "webhook_events", ["campaign_id", "event"])


def downgrade() -> None:
    """Drop ``webhook_events`` and the consent columns."""
    op.drop_index("ix_webhook_events_campaign_event", table_name="webhook_events")
    op.drop_table("webhook_events")
    # SQLite cannot drop a column in place: batch mode copies the table.
    with op.batch_alter_table("subscribers") as batch:
        for name in reversed(_CONSENT_COLUMNS):
            batch.drop_column(name)
