"""The SQL of delivery events: ``webhook_events`` rows, suppression, per-campaign counts.

Called by :mod:`pipeline.events.record`, which decides what to store and when;
these functions only read and write, inside the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import TYPE_CHECKING, Final

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from pipeline.store.leavers import suppress_for
from pipeline.store.models import (
    LEFT_STATUSES,
    Campaign,
    Delivery,
    Subscriber,
    SubscriberStatus,
    WebhookEvent,
)

if TYPE_CHECKING:
    from pipeline.events.model import DeliveryEvent

#: Event name -> the ``status --json`` key that counts it (distinct addresses).
COUNTED_EVENTS: Final = {
    "delivered": "delivered",
    "bounce": "bounced",
    "open": "opened",
    "click": "clicked",
}

#: Ids per IN list: SQLite allows many, but batches can hold thousands.
_IN_CHUNK: Final = 500


def stored_event_ids(session: Session, ids: Collection[str]) -> set[str]:
    """Which of ``ids`` are stored already."""
    listed = list(ids)
    seen: set[str] = set()
    for start in range(0, len(listed), _IN_CHUNK):
        chunk = listed[start : start + _IN_CHUNK]
        column = WebhookEvent.provider_event_id
        seen.update(session.scalars(select(column).where(column.in_(chunk))))
    return seen


def event_subscriber(session: Session, event: DeliveryEvent) -> Subscriber | None:
    """The subscriber an event is about: by its id if the address matches, else by address."""
    if event.subscriber_id is not None:
        found = session.get(Subscriber, event.subscriber_id)
        if found is not None and found.email == event.email:
            return found
    return session.scalar(select(Subscriber).where(Subscriber.email == event.email))


def event_campaign_id(session: Session, event: DeliveryEvent) -> int | None:
    """The campaign an event is about: by its ledger row, else by the campaign slug."""
    if event.delivery_id is not None:
        campaign_id = session.scalar(
            select(Delivery.campaign_id).where(Delivery.id == event.delivery_id)
        )
        if campaign_id is not None:
            return int(campaign_id)
    if event.campaign is None:
        return None
    found = session.scalar(select(Campaign.id).where(Campaign.slug == event.campaign))
    return int(found) if found is not None else None


def add_event(
    session: Session, event: DeliveryEvent, subscriber: Subscriber | None, now: datetime
) -> None:
    """Store one event row (the caller checked it is not stored yet)."""
    session.add(
        WebhookEvent(
            provider=event.provider,
            provider_event_id=event.provider_event_id,
            event=event.name,
            email=event.email,
            campaign_slug=event.campaign,
            campaign_id=event_campaign_id(session, event),
            delivery_id=event.delivery_id,
            subscriber_id=subscriber.id if subscriber is not None else None,
            occurred_at=event.occurred_at,
            reason=event.detail,
            raw=dict(event.raw),
            received_at=now,
        )
    )


def suppress(
    session: Session, subscriber: Subscriber, status: SubscriberStatus, now: datetime
) -> bool:
    """Put a subscriber in a leaving ``status`` and suppress their unsent ledger rows.

    A complaint outranks the other reasons to leave; otherwise the first
    reason recorded stays. Returns whether the subscriber's status changed.
    """
    changed = False
    if subscriber.status not in LEFT_STATUSES or (
        status == SubscriberStatus.COMPLAINED and subscriber.status != status
    ):
        subscriber.status = status
        subscriber.unsubscribed_at = subscriber.unsubscribed_at or now
        changed = True
    # A confirmation link in their mailbox must not bring them back.
    subscriber.confirm_sent_at = None
    suppress_for(session, [subscriber.id])
    return changed


def event_counts(sessions: sessionmaker[Session], campaign_id: int) -> dict[str, int]:
    """Distinct addresses per counted event for one campaign.

    ``{"delivered": n, "bounced": n, "opened": n, "clicked": n}``: an address
    opening an issue five times counts once.
    """
    query = (
        select(WebhookEvent.event, func.count(func.distinct(WebhookEvent.email)))
        .where(WebhookEvent.campaign_id == campaign_id, WebhookEvent.event.in_(COUNTED_EVENTS))
        .group_by(WebhookEvent.event)
    )
    with sessions() as session:
        found = {str(event): int(n) for event, n in session.execute(query)}
    return {key: found.get(event, 0) for event, key in COUNTED_EVENTS.items()}
