"""Why a delivery failed, as data: ``deliveries.failure_kind``.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02

``send --retry-failed`` sends again the rows that failed for a reason the
owner may have fixed (a request refused with 400/413, retries run out) and
never those refused for the person. Deciding that by parsing error text would
break with the next provider's wording, so the runner stores the kind the
transport reported. Nullable: rows that failed before this revision have no
kind and are never retried.

Written by hand to equal ``pipeline/store/models.py`` (``tests/store/test_store.py``
checks).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the nullable column (in place on SQLite and PostgreSQL alike)."""
    op.add_column("deliveries", sa.Column("failure_kind", sa.String(16), nullable=True))


def downgrade() -> None:
    """Drop it again (SQLite rebuilds the table in batch mode)."""
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_column("failure_kind")
