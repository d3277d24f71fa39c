"""Partial indexes for the ledger's hot path.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27

A delivery row changes state twice (pending -> sending -> final). With an index
on ``(campaign_id, status, id)`` and one on ``claim_token``, each change moved
entries in both: eight index writes per recipient. Partial indexes hold only
the rows a sender looks for: pending rows in ledger order, and rows in flight
by claim token. A row enters and leaves each once: three writes, and the
ledger's share of a send falls by about half.

Written by hand to equal ``pipeline/store/models.py`` (``tests/store/test_store.py``
checks).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PENDING = sa.text("status = 'pending'")
_IN_FLIGHT = sa.text("status = 'sending'")


def upgrade() -> None:
    """Swap the full status and claim-token indexes for partial ones."""
    op.drop_index("ix_deliveries_campaign_status_id", table_name="deliveries")
    op.drop_index("ix_deliveries_claim_token", table_name="deliveries")
    op.create_index(
        "ix_deliveries_pending",
        "deliveries",
        ["campaign_id", "id"],
        sqlite_where=_PENDING,
        postgresql_where=_PENDING,
    )
    op.create_index(
        "ix_deliveries_in_flight",
        "deliveries",
        ["campaign_id", "claim_token"],
        sqlite_where=_IN_FLIGHT,
        postgresql_where=_IN_FLIGHT,
    )


def downgrade() -> None:
    """Back to the full indexes of 0001."""
    op.drop_index("ix_deliveries_in_flight", table_name="deliveries")
    op.drop_index("ix_deliveries_pending", table_name="deliveries")
    op.create_index(
        "ix_deliveries_campaign_status_id", "deliveries", ["campaign_id", "status", "id"]
    )
    op.create_index("ix_deliveries_claim_token", "deliveries", ["claim_token"])
