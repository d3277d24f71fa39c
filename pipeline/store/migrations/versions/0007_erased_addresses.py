"""Keyed digests of erased addresses (``subscribers forget``).

Revision ID: 0007
Revises: 0006
Create Date: 2026-01-20

Written by hand to equal ``pipeline/store/models.py`` (``tests/store/test_store.py``
checks).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create ``erased_addresses``: one HMAC digest per erased address, nothing else."""
    op.create_table(
        "erased_addresses",
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("erased_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("digest"),
    )


def downgrade() -> None:
    """Drop ``erased_addresses`` (the erased addresses could then be imported again)."""
    op.drop_table("erased_addresses")
