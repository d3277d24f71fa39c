"""WHERE conditions on ledger rows by state, written so the partial indexes answer them.

Both halves of the ledger ask them: campaigns (is anything left open?) and
claims (which rows are pending, which are in flight). They live here once, so
the form the indexes need (the status inline, the claim token named) is kept
in one place.
"""

from __future__ import annotations

from sqlalchemy import and_, exists, literal, or_
from sqlalchemy.sql.elements import ColumnElement

from pipeline.store.models import Delivery, DeliveryStatus


def status_is(status: DeliveryStatus) -> ColumnElement[bool]:
    """``deliveries.status = '<status>'``, written into the SQL as the partial indexes are.

    A bound parameter serves SQLite, but a PostgreSQL plan for a prepared
    statement cannot prove that a parameter equals an index's predicate, and
    would pass over ``ix_deliveries_pending`` and ``ix_deliveries_in_flight``.
    """
    return Delivery.status == literal(status, Delivery.status.type, literal_execute=True)


def in_flight(campaign_id: ColumnElement[int] | int) -> ColumnElement[bool]:
    """A campaign's rows in ``sending``, read through ``ix_deliveries_in_flight``.

    Every such row holds a claim token; saying so lets SQLite's planner see
    that the partial index answers the question, rather than walking all the
    campaign's rows through the unique index.
    """
    return and_(
        Delivery.campaign_id == campaign_id,
        status_is(DeliveryStatus.SENDING),
        Delivery.claim_token.is_not(None),
    )


def has_open_rows(campaign_id: ColumnElement[int] | int) -> ColumnElement[bool]:
    """Rows pending or in flight: two EXISTS, so each can use its partial index."""
    pending = exists().where(Delivery.campaign_id == campaign_id, status_is(DeliveryStatus.PENDING))
    return or_(pending, exists().where(in_flight(campaign_id)))
