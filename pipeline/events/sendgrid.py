"""SendGrid events: store each once, suppress who must not be mailed, count per campaign.

Each event is stored under its ``sg_event_id`` (unique), so a redelivered
batch changes nothing. Events that say an address must not be mailed again
suppress its subscriber at once, including their ledger rows not yet sent:

* ``bounce`` (a hard bounce; ``type: blocked`` is a temporary refusal) -> bounced
* ``spamreport`` -> complained
* ``unsubscribe`` / ``group_unsubscribe`` -> unsubscribed
* ``dropped`` -> by SendGrid's reason: a suppressed or invalid address is
  bounced/complained/unsubscribed; a problem with the message itself
  ("Invalid SMTPAPI header", "Spam Content", size or quota) says nothing about
  the person and suppresses no one.

Events for an address erased at the person's request (``subscribers
forget``; its keyed digest is in ``erased_addresses``) are dropped unread:
SendGrid keeps reporting on mail sent before the erasure for weeks. No event
keeps the IP address or user agent SendGrid reports for opens and clicks:
nothing here uses them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from pipeline.errors import InvalidAddressError
from pipeline.store.erasure import erased_among
from pipeline.store.models import (
    LEFT_STATUSES,
    Campaign,
    Delivery,
    DeliveryStatus,
    Subscriber,
    SubscriberStatus,
    WebhookEvent,
)
from pipeline.subscribers.addresses import normalize_address
from pipeline.subscribers.erasure import erasure_digest

#: Event name -> the ``status --json`` key that counts it (distinct addresses).
COUNTED_EVENTS: Final = {
    "delivered": "delivered",
    "bounce": "bounced",
    "open": "opened",
    "click": "clicked",
}

#: ``dropped`` reasons that are about the message, not the address (SendGrid's wording).
_MESSAGE_PROBLEMS: Final = ("smtpapi", "spam content", "exceeded", "quota", "size")

_MAX_REASON = 2000

#: Fields of SendGrid's events that describe the reader's device, not the delivery.
_NOT_KEPT: Final = frozenset({"ip", "useragent"})

#: Events stored per transaction (a few hundred milliseconds of SQLite's write lock).
EVENTS_PER_TRANSACTION: Final = 500


@dataclass(frozen=True)
class EventReport:
    """What one webhook request did."""

    received: int
    stored: int
    duplicates: int
    invalid: int
    suppressed: int
    #: Dropped unread: the address was erased at the person's request.
    erased: int = 0


@dataclass(frozen=True)
class _Event:
    """One event's fields, read defensively from SendGrid's JSON."""

    sg_event_id: str
    event: str
    email: str
    occurred_at: datetime
    campaign_slug: str | None
    delivery_id: int | None
    subscriber_id: int | None
    reason: str | None
    raw: dict[str, Any]


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _parse(item: Any, now: datetime) -> _Event | None:
    """An event, or None when it lacks what every SendGrid event has (event, email)."""
    if not isinstance(item, dict):
        return None
    event, email = item.get("event"), item.get("email")
    if not isinstance(event, str) or not event or not isinstance(email, str):
        return None
    try:
        # The check every entry point uses: an address with an encoded-word or a
        # control character is never stored (the event counts as invalid).
        address = normalize_address(email)
    except InvalidAddressError:
        return None
    sg_event_id = item.get("sg_event_id")
    if not isinstance(sg_event_id, str) or not sg_event_id or len(sg_event_id) > 100:
        # SendGrid always sends one; without it, the event's own content keeps replays idempotent.
        canonical = json.dumps(item, sort_keys=True, separators=(",", ":"), default=str)
        sg_event_id = "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:64]
    stamp = _int(item.get("timestamp"))
    try:
        occurred_at = datetime.fromtimestamp(stamp, UTC) if stamp is not None else now
    except (OverflowError, OSError, ValueError):
        occurred_at = now
    reason = item.get("reason") or item.get("response")
    campaign = item.get("campaign")
    return _Event(
        sg_event_id=sg_event_id,
        event=event.strip().lower()[:32],
        email=address,
        occurred_at=occurred_at,
        campaign_slug=campaign[:200] if isinstance(campaign, str) and campaign else None,
        delivery_id=_int(item.get("delivery_id")),
        subscriber_id=_int(item.get("subscriber_id")),
        reason=str(reason)[:_MAX_REASON] if reason else None,
        raw=item,
    )


def suppression_for(event: str, raw: Mapping[str, Any]) -> SubscriberStatus | None:
    """The status an event puts its subscriber in, or None if it suppresses no one."""
    if event == "bounce":
        return None if str(raw.get("type", "")).lower() == "blocked" else SubscriberStatus.BOUNCED
    if event == "spamreport":
        return SubscriberStatus.COMPLAINED
    if event in ("unsubscribe", "group_unsubscribe"):
        return SubscriberStatus.UNSUBSCRIBED
    if event == "dropped":
        reason = str(raw.get("reason") or "").lower()
        if any(problem in reason for problem in _MESSAGE_PROBLEMS):
            return None
        if "spam" in reason:
            return SubscriberStatus.COMPLAINED
        if "unsubscribe" in reason:
            return SubscriberStatus.UNSUBSCRIBED
        return SubscriberStatus.BOUNCED
    return None


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
    session.execute(
        update(Delivery)
        .where(Delivery.subscriber_id == subscriber.id, Delivery.status == DeliveryStatus.PENDING)
        .values(status=DeliveryStatus.SUPPRESSED),
        execution_options={"synchronize_session": False},
    )
    return changed


def _subscriber(session: Session, event: _Event) -> Subscriber | None:
    if event.subscriber_id is not None:
        found = session.get(Subscriber, event.subscriber_id)
        if found is not None and found.email == event.email:
            return found
    return session.scalar(select(Subscriber).where(Subscriber.email == event.email))


def _campaign_id(session: Session, event: _Event) -> int | None:
    if event.delivery_id is not None:
        campaign_id = session.scalar(
            select(Delivery.campaign_id).where(Delivery.id == event.delivery_id)
        )
        if campaign_id is not None:
            return int(campaign_id)
    if event.campaign_slug is None:
        return None
    found = session.scalar(select(Campaign.id).where(Campaign.slug == event.campaign_slug))
    return int(found) if found is not None else None


def _apply(session: Session, event: _Event, now: datetime) -> bool:
    """Store one event and act on it; True if it suppressed someone."""
    subscriber = _subscriber(session, event)
    session.add(
        WebhookEvent(
            sg_event_id=event.sg_event_id,
            event=event.event,
            email=event.email,
            campaign_slug=event.campaign_slug,
            campaign_id=_campaign_id(session, event),
            delivery_id=event.delivery_id,
            subscriber_id=subscriber.id if subscriber is not None else None,
            occurred_at=event.occurred_at,
            reason=event.reason,
            raw={key: value for key, value in event.raw.items() if key not in _NOT_KEPT},
            received_at=now,
        )
    )
    status = suppression_for(event.event, event.raw)
    if subscriber is None or status is None:
        return False
    consent_at = subscriber.consent_at
    if consent_at is not None and event.occurred_at < consent_at:
        return False  # about an earlier stay on the list: they have opted in again since
    return suppress(session, subscriber, status, now)


def record_events(
    sessions: sessionmaker[Session], items: Iterable[Any], now: datetime, *, secret_key: str
) -> EventReport:
    """Store and act on a webhook batch; events already stored are skipped.

    Events for an erased address (its digest under ``secret_key``) are dropped.

    One transaction per :data:`EVENTS_PER_TRANSACTION` events, so a large batch
    never holds SQLite's write lock for long (a one-click unsubscribe waits for
    one chunk at most, well under a second). If a concurrent delivery of the
    same events wins a race on ``sg_event_id``, that chunk is redone one event
    at a time. A crash midway leaves the earlier chunks stored; SendGrid's
    retry then stores the rest (stored ones are skipped by ``sg_event_id``).
    """
    items = list(items)
    parsed = [_parse(item, now) for item in items]
    events = list({e.sg_event_id: e for e in parsed if e is not None}.values())
    invalid = sum(1 for e in parsed if e is None)
    stored = suppressed = erased = 0
    for start in range(0, len(events), EVENTS_PER_TRANSACTION):
        chunk = events[start : start + EVENTS_PER_TRANSACTION]
        s, n, e = _record_chunk(sessions, chunk, now, secret_key)
        stored, suppressed, erased = stored + s, suppressed + n, erased + e
    return EventReport(
        received=len(items),
        stored=stored,
        duplicates=len(items) - invalid - stored - erased,
        invalid=invalid,
        suppressed=suppressed,
        erased=erased,
    )


def _record_chunk(
    sessions: sessionmaker[Session], events: list[_Event], now: datetime, secret_key: str
) -> tuple[int, int, int]:
    """One transaction for ``events``, or one per event if another delivery raced us."""
    try:
        with sessions.begin() as session:
            kept = _not_erased(session, events, secret_key)
            return (*_apply_new(session, kept, now), len(events) - len(kept))
    except IntegrityError:
        stored = suppressed = erased = 0
        for event in events:
            try:
                with sessions.begin() as session:
                    kept = _not_erased(session, [event], secret_key)
                    s, n = _apply_new(session, kept, now)
            except IntegrityError:
                continue  # stored meanwhile by the other delivery
            stored, suppressed, erased = stored + s, suppressed + n, erased + 1 - len(kept)
        return stored, suppressed, erased


def _not_erased(session: Session, events: list[_Event], secret_key: str) -> list[_Event]:
    """The events whose address was not erased at the person's request.

    Checked in the storing transaction, so an erasure committed before it is honoured.
    """
    digests = [erasure_digest(secret_key, event.email) for event in events]
    erased = erased_among(session, set(digests))
    return [event for event, digest in zip(events, digests, strict=True) if digest not in erased]


def _apply_new(session: Session, events: list[_Event], now: datetime) -> tuple[int, int]:
    ids = [e.sg_event_id for e in events]
    seen: set[str] = set()
    # Bounded IN lists: SQLite allows many, but batches can hold thousands.
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        seen.update(
            session.scalars(
                select(WebhookEvent.sg_event_id).where(WebhookEvent.sg_event_id.in_(chunk))
            )
        )
    stored = suppressed = 0
    for event in events:
        if event.sg_event_id in seen:
            continue
        suppressed += _apply(session, event, now)
        session.flush()
        stored += 1
    return stored, suppressed


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
