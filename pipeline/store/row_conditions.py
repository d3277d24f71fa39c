"""WHERE conditions on ledger rows by state, written so the partial indexes answer them.

Both halves of the ledger ask them: campaigns (is anything left open?) and
claims (which rows are pending, which are in flight). They live here once, so
the form the indexes need (the index's predicate named, the claims in flight
looked up by token) is kept in one place.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, exists, literal, or_, select
from sqlalchemy.sql.elements import ColumnElement

from pipeline.store.models import Delivery, DeliveryStatus, InFlightClaim


def status_is(status: DeliveryStatus) -> ColumnElement[bool]:
    """``deliveries.status = '<status>'``, the status written into the SQL.

    A bound parameter serves SQLite, but PostgreSQL plans a prepared
    statement once for any value, and the value decides whether an index
    (or the ledger's few rows in one state) is the way in.
    """
    return Delivery.status == literal(status, Delivery.status.type, literal_execute=True)


def pending() -> ColumnElement[bool]:
    """Rows ``pending``, read through ``ix_deliveries_pending``.

    The index holds rows without a claim (``claimed_at IS NULL``: a pending
    row has none, the table's CHECK says so), not rows by status: an
    outcome's write then touches no index (migration 0019 says why).
    Naming the predicate lets both planners see that the index answers.
    """
    return and_(Delivery.claimed_at.is_(None), status_is(DeliveryStatus.PENDING))


def back_to_pending() -> dict[str, Any]:
    """The values that make a row ``pending`` again: its state, and no claim left on it.

    Every write that makes a row pending uses these: a pending row with a
    claim would sit outside ``ix_deliveries_pending``, where no claim looks
    (the table's CHECK refuses it). Given back, requeued and retried rows alike.
    """
    return {
        "status": DeliveryStatus.PENDING,
        "error": None,
        "claim_token": None,
        "claimed_at": None,
        "claimed_by": None,
    }


def in_flight(campaign_id: ColumnElement[int] | int) -> ColumnElement[bool]:
    """A campaign's rows in ``sending``: those of its claims in ``in_flight_claims``, by token.

    No index on ``deliveries`` names the status, so the claims table says
    which tokens to look for and ``ix_deliveries_claim_token`` finds their
    rows (the ``IS NOT NULL`` lets SQLite's planner see that it may).
    """
    tokens = select(InFlightClaim.token).where(InFlightClaim.campaign_id == campaign_id)
    return and_(
        Delivery.claim_token.is_not(None),
        Delivery.claim_token.in_(tokens),
        Delivery.campaign_id == campaign_id,
        status_is(DeliveryStatus.SENDING),
    )


def has_open_rows(campaign_id: ColumnElement[int] | int) -> ColumnElement[bool]:
    """Rows pending or in flight: two EXISTS, each through its own index."""
    waiting = exists().where(Delivery.campaign_id == campaign_id, pending())
    return or_(waiting, exists().where(in_flight(campaign_id)))
