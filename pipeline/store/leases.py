"""A claim's lease: renewed while its batch is out, expired when its sender is gone, requeued.

A claim is listed in ``in_flight_claims`` from the transaction that puts its
rows in flight to the one that settles the last of them
(:mod:`pipeline.store.claims`, :mod:`pipeline.store.writeback`). Its sender
renews the lease every quarter lease; a claim whose sender died, or stopped
renewing, is expired here: its rows become ``uncertain``, never resent blind,
until the owner asks for them again (:func:`requeue_uncertain`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session, sessionmaker

from pipeline.store.claims import Claim
from pipeline.store.db import rowcount
from pipeline.store.models import Delivery, DeliveryStatus, InFlightClaim
from pipeline.store.row_conditions import back_to_pending, status_is


def renew(sessions: sessionmaker[Session], claim: Claim, now: datetime) -> bool:
    """Extend the lease on a claim still in flight; whether the claim still holds.

    One row (the claim's, in ``in_flight_claims``), not the batch's. False
    when it is gone: another process expired the claim (its rows are
    ``uncertain`` now), so this sender lost its lease.
    """
    with sessions.begin() as session:
        result = session.execute(
            update(InFlightClaim).where(InFlightClaim.token == claim.token).values(claimed_at=now),
            execution_options={"synchronize_session": False},
        )
        return rowcount(result) > 0


def expire_stale(
    sessions: sessionmaker[Session],
    campaign_id: int,
    now: datetime,
    lease: timedelta,
    is_dead: Callable[[str], bool],
) -> int:
    """Rows in flight for a sender that is gone become uncertain.

    A sender is gone when ``is_dead(claimed_by)`` says so (a crashed
    process on this host) or when it has not renewed its lease in time.
    Those rows may or may not have left: resending could double-send and
    dropping could miss, so they are flagged for the owner instead. They
    keep their claim token, so that if their sender was only slow and
    reports later, the ledger takes its word (see writeback).
    """
    with sessions.begin() as session:
        held = session.execute(
            select(InFlightClaim.token, InFlightClaim.claimed_by, InFlightClaim.claimed_at).where(
                InFlightClaim.campaign_id == campaign_id
            )
        ).all()
        dead = {owner: is_dead(owner) for owner in {owner for _, owner, _ in held}}
        stale = [token for token, owner, since in held if since < now - lease or dead[owner]]
        if not stale:
            return 0
        result = session.execute(
            update(Delivery)
            .where(
                Delivery.campaign_id == campaign_id,
                Delivery.claim_token.in_(stale),
                Delivery.claim_token.is_not(None),
                status_is(DeliveryStatus.SENDING),
            )
            .values(
                status=DeliveryStatus.UNCERTAIN,
                error="the sender stopped while this message was in flight",
            ),
            execution_options={"synchronize_session": False},
        )
        session.execute(delete(InFlightClaim).where(InFlightClaim.token.in_(stale)))
        return rowcount(result)


def requeue_uncertain(sessions: sessionmaker[Session], campaign_id: int) -> int:
    """Uncertain rows back to pending, for an owner who prefers a duplicate to a miss.

    The claim token goes: the old sender's late report then matches
    nothing, and whoever claims the rows next does so under a new token.
    """
    with sessions.begin() as session:
        result = session.execute(
            update(Delivery)
            .where(
                Delivery.campaign_id == campaign_id,
                Delivery.status == DeliveryStatus.UNCERTAIN,
            )
            .values(back_to_pending()),
            execution_options={"synchronize_session": False},
        )
        return rowcount(result)
