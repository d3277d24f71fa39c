"""An index on catch-up rows alone, by send slot.

Revision ID: 0017
Revises: 0016
Create Date: 2027-01-28

"Who had a catch-up email today?" was asked once per subscriber, through
every row they hold (``ix_deliveries_subscriber``, then each row's
``catch_up_at``): planning a series part grew with the list's whole history.
Partial on ``catch_up_at IS NOT NULL``, the index holds catch-up rows only:
live rows (nearly all of them) are never written to it, and today's catch-up
rows are one short range of it. Written by hand to equal
``pipeline/store/models.py`` (``tests/store/test_store.py`` checks).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_CATCH_UP = sa.text("catch_up_at IS NOT NULL")


def upgrade() -> None:
    """Index catch-up rows by slot, with their subscriber."""
    op.create_index(
        "ix_deliveries_catch_up",
        "deliveries",
        ["catch_up_at", "subscriber_id"],
        sqlite_where=_CATCH_UP,
        postgresql_where=_CATCH_UP,
    )


def downgrade() -> None:
    """Drop it."""
    op.drop_index("ix_deliveries_catch_up", table_name="deliveries")
