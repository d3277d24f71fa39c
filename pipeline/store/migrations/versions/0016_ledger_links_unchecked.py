"""The ledger's ids without FOREIGN KEY constraints.

Revision ID: 0016
Revises: 0015
Create Date: 2027-01-27

PostgreSQL checks a foreign key with one query per row inserted: planning a
100,000-recipient campaign spent 0.73 of its 1.23 s in those checks. The
links are kept by the writers instead (``pipeline/store/ledger_links.py``
says how). On SQLite, where a constraint cannot be dropped in
place, the table is rebuilt (Alembic's batch mode), its partial indexes and
CHECK with it. Written by hand to equal ``pipeline/store/models.py``.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: Names for the unnamed constraints of 0001, so that batch mode can drop them on SQLite.
_NAMES = {"fk": "fk_%(table_name)s_%(column_0_name)s"}


def upgrade() -> None:
    """Drop both foreign keys of ``deliveries``."""
    if op.get_bind().dialect.name != "sqlite":
        # PostgreSQL named 0001's constraints <table>_<column>_fkey.
        for column in ("campaign_id", "subscriber_id"):
            op.drop_constraint(f"deliveries_{column}_fkey", "deliveries", type_="foreignkey")
        return
    with op.batch_alter_table("deliveries", naming_convention=_NAMES) as batch:
        batch.drop_constraint("fk_deliveries_campaign_id", type_="foreignkey")
        batch.drop_constraint("fk_deliveries_subscriber_id", type_="foreignkey")


def downgrade() -> None:
    """Put the foreign keys of 0001 back."""
    with op.batch_alter_table("deliveries") as batch:
        batch.create_foreign_key(
            "fk_deliveries_campaign_id", "campaigns", ["campaign_id"], ["id"], ondelete="CASCADE"
        )
        batch.create_foreign_key(
            "fk_deliveries_subscriber_id",
            "subscribers",
            ["subscriber_id"],
            ["id"],
            ondelete="SET NULL",
        )
