"""Catch-up emails' own issue per send slot (``catch_up_issues``).

Revision ID: 0014
Revises: 0013
Create Date: 2027-01-19

A catch-up send shows the series from the reader's side ("Next: ... in your
inbox on Thu 3 Dec"), so its rows need an issue of their own: one per
campaign and send slot, rendered by the daily pass before its rows exist.
Written by hand to equal ``pipeline/store/models.py``.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create the table."""
    op.create_table(
        "catch_up_issues",
        sa.Column(
            "campaign_id",
            sa.Integer(),
            sa.ForeignKey("campaigns.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("slot", sa.DateTime(timezone=True), primary_key=True),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("preheader", sa.Text(), nullable=False),
        sa.Column("html", sa.Text(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
    )


def downgrade() -> None:
    """Drop the table."""
    op.drop_table("catch_up_issues")
