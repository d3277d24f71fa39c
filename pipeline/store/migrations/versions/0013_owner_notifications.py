"""What was sent to the owner (``notifications``) and firings the owner held (``held_firings``).

Revision ID: 0013
Revises: 0012
Create Date: 2027-01-12

``notifications``: one row per message to ``[owner] email``; the unique
(kind, subject_key, day) is the "at most once a day per subject" rule, kept
in the database so a restart the same day does not send it again.
``held_firings``: a recurring firing the owner held from the heads-up's
"Hold this send" page; nothing is sent at it until ``schedule resume``.
Written by hand to equal ``pipeline/store/models.py``.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _utc() -> sa.DateTime:
    # models.UTCDateTime stores through this type.
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create both tables."""
    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("subject_key", sa.String(300), nullable=False),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("sent_at", _utc(), nullable=False),
        sa.Column("recipients", sa.Text(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.UniqueConstraint("kind", "subject_key", "day", name="uq_notifications_once_a_day"),
    )
    op.create_index("ix_notifications_sent_at", "notifications", ["sent_at"])
    op.create_table(
        "held_firings",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("firing_at", _utc(), nullable=False),
        sa.Column("slug", sa.String(200), nullable=True),
        sa.Column("held_at", _utc(), nullable=False),
        sa.Column("released_at", _utc(), nullable=True),
        sa.UniqueConstraint("firing_at"),
    )


def downgrade() -> None:
    """Drop both tables."""
    op.drop_table("held_firings")
    op.drop_index("ix_notifications_sent_at", table_name="notifications")
    op.drop_table("notifications")
