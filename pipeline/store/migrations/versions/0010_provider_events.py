"""Delivery events of any provider: ``sg_event_id`` -> ``provider_event_id``, plus ``provider``.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-09

The webhook table named its id column after SendGrid; a second provider's
events would have had to pretend to be SendGrid's. The column is renamed
(its unique constraint follows it) and ``provider`` says whose id it is;
every row stored so far came from SendGrid, hence the server default.

Batch mode: SQLite rebuilds the table (copying every row); PostgreSQL runs
plain ``ALTER TABLE`` statements. Written by hand to equal
``pipeline/store/models.py`` (``tests/store/test_store.py`` checks).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Rename the id column and add ``provider`` (existing rows: 'sendgrid')."""
    with op.batch_alter_table("webhook_events") as batch:
        batch.alter_column(
            "sg_event_id",
            new_column_name="provider_event_id",
            existing_type=sa.String(100),
            existing_nullable=False,
        )
        batch.add_column(
            sa.Column("provider", sa.String(32), nullable=False, server_default="sendgrid")
        )


def downgrade() -> None:
    """Back to SendGrid's column name; ``provider`` is dropped."""
    with op.batch_alter_table("webhook_events") as batch:
        batch.drop_column("provider")
        batch.alter_column(
            "provider_event_id",
            new_column_name="sg_event_id",
            existing_type=sa.String(100),
            existing_nullable=False,
        )
