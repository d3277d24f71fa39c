"""The catch-up track: a ledger row may be a catch-up send (``deliveries.catch_up_at``).

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30

A subscriber who joins after part 1 of a series went out gets the parts they
missed on their own track. Each such send is an ordinary row of the article's
own campaign, so ``uq_deliveries_campaign_subscriber`` (one campaign per
article) is the database's guarantee that an article reaches a person at most
once, live or caught up. ``catch_up_at`` is NULL for live rows; for a catch-up
row it is the send slot (the clinic's send time of day) it was planned for.

``ix_deliveries_subscriber`` answers the catch-up pass's per-person questions
(what has this person had, anything today?) without walking every campaign.
It indexes only ``subscriber_id``, which a state change never touches, so the
sending hot path pays nothing for it (see 0005).

Written by hand to equal ``pipeline/store/models.py`` (``tests/store/test_store.py``
checks).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add ``catch_up_at`` (NULL: a live row) and the per-subscriber index."""
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(sa.Column("catch_up_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_deliveries_subscriber", "deliveries", ["subscriber_id"])


def downgrade() -> None:
    """Drop them; catch-up rows stay, as live-looking rows (still sent once)."""
    op.drop_index("ix_deliveries_subscriber", table_name="deliveries")
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_column("catch_up_at")
