"""Why a campaign stopped with rows pending, and when the scheduler tries it again.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28

A run that stops with rows pending (SendGrid 5xx or 429 retries used up, SMTP
4xx deferrals, a network outage) leaves one row here: the reason, whether it
waits for the scheduler's next retry or for its owner (credentials or sender
refused), and the backoff. In the database, so a scheduler restart keeps it.

Written by hand to equal ``pipeline/store/models.py`` (``tests/store/test_store.py``
checks).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _utc() -> sa.DateTime:
    # models.UTCDateTime stores through this type.
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create ``campaign_stops``."""
    op.create_table(
        "campaign_stops",
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column(
            "waiting_for",
            # Non-native, as in 0001: VARCHAR(16) + CHECK on SQLite and PostgreSQL alike.
            sa.Enum(
                "retry",
                "owner",
                name="waiting_for",
                native_enum=False,
                length=16,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column("stopped_at", _utc(), nullable=False),
        sa.Column("retry_at", _utc(), nullable=True),
        sa.Column("retries", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaigns.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("campaign_id"),
    )


def downgrade() -> None:
    """Drop ``campaign_stops``."""
    op.drop_table("campaign_stops")
