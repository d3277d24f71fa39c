"""Store delivery events once each, suppress who must not be mailed, whatever the provider.

Each event is stored under its ``provider_event_id`` (unique), so a
redelivered batch changes nothing. An event whose ``leaves`` is set (the
parser's reading: a hard bounce, a complaint, an unsubscribe) suppresses its
subscriber at once, including their ledger rows not yet sent, unless it is
about an earlier stay on the list (before their latest opt-in).

Events for an address erased at the person's request (``subscribers
forget``; its keyed digest is in ``erased_addresses``) are dropped unread:
providers keep reporting on mail sent before the erasure for weeks. The SQL is
in :mod:`pipeline.store.events`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from pipeline.events.model import DeliveryEvent
from pipeline.store.erasure import erased_among
from pipeline.store.events import add_event, event_subscriber, stored_event_ids, suppress
from pipeline.subscribers.erasure import erasure_digest

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


def _apply(session: Session, event: DeliveryEvent, now: datetime) -> bool:
    """Store one event and act on it; True if it suppressed someone."""
    subscriber = event_subscriber(session, event)
    add_event(session, event, subscriber, now)
    status = event.leaves
    if subscriber is None or status is None:
        return False
    consent_at = subscriber.consent_at
    if consent_at is not None and event.occurred_at < consent_at:
        return False  # about an earlier stay on the list: they have opted in again since
    return suppress(session, subscriber, status, now)


def store_events(
    sessions: sessionmaker[Session],
    parsed: Sequence[DeliveryEvent | None],
    now: datetime,
    *,
    secret_key: str,
) -> EventReport:
    """Store and act on a parsed webhook batch (None: an item that was no event).

    Events already stored are skipped; events for an erased address (its
    digest under ``secret_key``) are dropped.

    One transaction per :data:`EVENTS_PER_TRANSACTION` events, so a large batch
    never holds SQLite's write lock for long (a one-click unsubscribe waits for
    one chunk at most, well under a second). If a concurrent delivery of the
    same events wins a race on ``provider_event_id``, that chunk is redone one
    event at a time. A crash midway leaves the earlier chunks stored; the
    provider's retry then stores the rest (stored ones are skipped by id).
    """
    events = list({e.provider_event_id: e for e in parsed if e is not None}.values())
    invalid = sum(1 for e in parsed if e is None)
    stored = suppressed = erased = 0
    for start in range(0, len(events), EVENTS_PER_TRANSACTION):
        chunk = events[start : start + EVENTS_PER_TRANSACTION]
        s, n, e = _record_chunk(sessions, chunk, now, secret_key)
        stored, suppressed, erased = stored + s, suppressed + n, erased + e
    return EventReport(
        received=len(parsed),
        stored=stored,
        duplicates=len(parsed) - invalid - stored - erased,
        invalid=invalid,
        suppressed=suppressed,
        erased=erased,
    )


def _record_chunk(
    sessions: sessionmaker[Session], events: list[DeliveryEvent], now: datetime, secret_key: str
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


def _not_erased(
    session: Session, events: list[DeliveryEvent], secret_key: str
) -> list[DeliveryEvent]:
    """The events whose address was not erased at the person's request.

    Checked in the storing transaction, so an erasure committed before it is honoured.
    """
    digests = [erasure_digest(secret_key, event.email) for event in events]
    erased = erased_among(session, set(digests))
    return [event for event, digest in zip(events, digests, strict=True) if digest not in erased]


def _apply_new(session: Session, events: list[DeliveryEvent], now: datetime) -> tuple[int, int]:
    seen = stored_event_ids(session, [e.provider_event_id for e in events])
    stored = suppressed = 0
    for event in events:
        if event.provider_event_id in seen:
            continue
        suppressed += _apply(session, event, now)
        session.flush()
        stored += 1
    return stored, suppressed
