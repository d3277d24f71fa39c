"""The scheduler's tables: one-off sends and the scheduler's state (pause, leader lease).

Revision ID: 0002
Revises: 0001
Create Date: 2026-01-01

Written by hand to equal ``pipeline/store/models.py`` (``tests/store/test_store.py``
checks). APScheduler's own ``apscheduler_jobs`` table is not described here:
APScheduler creates and owns it.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _utc() -> sa.DateTime:
    # models.UTCDateTime stores through this type.
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create ``scheduled_sends`` and ``scheduler_state``."""
    op.create_table(
        "scheduled_sends",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("slug", sa.String(200), nullable=False),
        sa.Column("at", _utc(), nullable=False),
        sa.Column(
            "status",
            # Non-native, as in 0001: VARCHAR(16) + CHECK on SQLite and PostgreSQL alike.
            sa.Enum(
                "pending",
                "fired",
                "cancelled",
                "missed",
                name="scheduled_send_status",
                native_enum=False,
                length=16,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("fired_at", _utc(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("slug"),
    )
    op.create_index("ix_scheduled_sends_status_at", "scheduled_sends", ["status", "at"])

    op.create_table(
        "scheduler_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("paused_at", _utc(), nullable=True),
        sa.Column("leader", sa.String(200), nullable=True),
        sa.Column("lease_expires_at", _utc(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    """Drop both tables."""
    op.drop_table("scheduler_state")
    op.drop_index("ix_scheduled_sends_status_at", table_name="scheduled_sends")
    op.drop_table("scheduled_sends")
