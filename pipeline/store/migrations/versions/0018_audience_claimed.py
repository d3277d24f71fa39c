"""Ledger rows written when claimed: a campaign's audience bound, claims' progress, exclusions.

Revision ID: 0018
Revises: 0017
Create Date: 2027-02-04

Planning no longer writes a ``pending`` row per person; each claim writes its
people's rows, already ``sending`` (``pipeline/store/snapshot.py`` says why
and how). A campaign records the highest subscriber id of its audience and
how far claims have got; ``campaign_exclusions`` lists who up to that id was
not in the audience. Campaigns planned before keep both columns NULL: all
their rows exist. Written by hand to equal ``pipeline/store/models.py``
(``tests/store/test_store.py`` checks).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Two nullable columns on campaigns (no row rewritten) and the exclusions table."""
    op.add_column("campaigns", sa.Column("audience_bound", sa.Integer(), nullable=True))
    op.add_column("campaigns", sa.Column("claimed_through", sa.Integer(), nullable=True))
    op.create_table(
        "campaign_exclusions",
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("subscriber_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("campaign_id", "subscriber_id"),
    )


def downgrade() -> None:
    """Every campaign's rows written first would be needed; refuse to lose people silently."""
    bind = op.get_bind()
    open_ones = bind.execute(
        sa.text(
            "SELECT count(*) FROM campaigns WHERE audience_bound IS NOT NULL"
            " AND coalesce(claimed_through, 0) < audience_bound"
        )
    ).scalar()
    if open_ones:
        raise RuntimeError(
            f"{open_ones} campaign(s) have people without a ledger row yet: send them first"
        )
    op.drop_table("campaign_exclusions")
    with op.batch_alter_table("campaigns") as batch:
        batch.drop_column("claimed_through")
        batch.drop_column("audience_bound")
