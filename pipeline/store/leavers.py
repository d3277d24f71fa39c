"""Someone who leaves while campaigns are under way: suppressed, never mailed.

Unsubscribing, bouncing, complaining or being erased all end the same way
for the campaigns still sending: a row still ``pending`` becomes
``suppressed``, and a campaign whose claims have not reached the person yet
gets a ``suppressed`` row for them at once (its audience was fixed when it
was planned, :mod:`pipeline.store.snapshot`), so the counts still add up to
planned and no later claim mails them. A row already in flight is left to
its batch, which has read the address (a per-message transport asks again
every few dozen messages: :func:`pipeline.store.claims.still_wanted`).
"""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import Integer, String, and_, delete, exists, insert, literal, select, update
from sqlalchemy.orm import Session

from pipeline.store.models import (
    Campaign,
    CampaignExclusion,
    Delivery,
    DeliveryStatus,
    Subscriber,
)
from pipeline.store.snapshot import unreached


def suppress_for(session: Session, subscriber_ids: Collection[int]) -> None:
    """These subscribers left: their ``pending`` rows and unreached places are suppressed."""
    ids = list(subscriber_ids)
    if not ids:
        return
    suppress_unreached(session, ids)
    session.execute(
        update(Delivery)
        .where(Delivery.subscriber_id.in_(ids), Delivery.status == DeliveryStatus.PENDING)
        .values(status=DeliveryStatus.SUPPRESSED),
        execution_options={"synchronize_session": False},
    )


def suppress_unreached(session: Session, subscriber_ids: Collection[int]) -> None:
    """A ``suppressed`` row for each of these people in each campaign not yet reaching them.

    Someone who leaves (or is erased) before a claim reaches them is counted
    as the plan counted them, suppressed, never mailed; a claim later finds
    their row and passes them by.
    """
    reaches = and_(
        unreached(),
        ~exists().where(
            Delivery.campaign_id == Campaign.id, Delivery.subscriber_id == Subscriber.id
        ),
    )
    rows = (
        select(
            Campaign.id,
            Subscriber.id,
            literal(DeliveryStatus.SUPPRESSED.value, String),
            literal(0, Integer),
        )
        .select_from(Campaign)
        .join(Subscriber, Subscriber.id.in_(list(subscriber_ids)))
        .where(reaches)
    )
    session.execute(
        insert(Delivery).from_select(["campaign_id", "subscriber_id", "status", "attempts"], rows)
    )


def forget_exclusions_of(session: Session, subscriber_id: int) -> None:
    """An erased subscriber leaves the exclusion lists too (after :func:`suppress_unreached`)."""
    session.execute(
        delete(CampaignExclusion).where(CampaignExclusion.subscriber_id == subscriber_id)
    )
