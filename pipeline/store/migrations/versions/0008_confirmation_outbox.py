"""The confirmation outbox: sign-ups waiting for the background sender.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-10

The sign-up form used to send the confirmation email itself, so an answer's
status and timing told whether the address was already on the list. Now the
form writes one row here for every address and a background sender does the
rest (issue 12).

Written by hand to equal ``pipeline/store/models.py`` (``tests/store/test_store.py``
checks).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _utc() -> sa.DateTime:
    # models.UTCDateTime stores through this type.
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create ``confirmation_outbox``."""
    op.create_table(
        "confirmation_outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("first_name", sa.String(200), nullable=True),
        sa.Column("source", sa.String(200), nullable=False),
        sa.Column("requested_at", _utc(), nullable=False),
        sa.Column("next_attempt_at", _utc(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("subscriber_id", sa.Integer(), nullable=True),
        sa.Column("reserved_at", _utc(), nullable=True),
        sa.Column("last_error", sa.String(500), nullable=True),
        sa.ForeignKeyConstraint(["subscriber_id"], ["subscribers.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_confirmation_outbox_next_attempt_at", "confirmation_outbox", ["next_attempt_at"]
    )


def downgrade() -> None:
    """Drop ``confirmation_outbox`` (sign-ups still queued are lost)."""
    op.drop_index("ix_confirmation_outbox_next_attempt_at", table_name="confirmation_outbox")
    op.drop_table("confirmation_outbox")
