"""Double opt-in, stored: reserve a confirmation email, then turn a confirmed address active.

Nothing here sends mail or reads HTTP. The form queues every sign-up
(:mod:`pipeline.store.confirmations`); the background sender
(:mod:`pipeline.web.confirm_sender`) asks :func:`reserve_queued` whether an
email is due, and sends it.
An address becomes ``active`` only through :func:`confirm_subscription`,
and that is also the only way back for someone who left: consent is given
by the person, from their own mailbox, every time. The form's own rules (the
first name it accepts) are in :mod:`pipeline.subscribers.signup`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from pipeline.store import confirmations
from pipeline.store.confirmations import QueuedConfirmation
from pipeline.store.erasure import unerase
from pipeline.store.models import LEFT_STATUSES, Subscriber, SubscriberStatus
from pipeline.store.subscribers import find
from pipeline.store.welcome import enrol_ids
from pipeline.subscribers.erasure import erasure_digest
from pipeline.tokens import TokenClaims

#: At most one confirmation email per address in this window (abuse limit).
CONFIRM_INTERVAL = timedelta(hours=1)
#: What the consent record says about where consent was given.
CONSENT_SOURCE = "web form (double opt-in)"

_WRITE_ATTEMPTS = 3


@dataclass(frozen=True)
class ConfirmationRequest:
    """A confirmation email to send now: the address, and the stamp its link must carry."""

    subscriber_id: int
    email: str
    sent_at: datetime


class ConfirmOutcome(enum.StrEnum):
    """What a confirm link did."""

    CONFIRMED = "confirmed"
    ALREADY_ACTIVE = "already_active"
    #: Unknown subscriber, a newer link was sent, already used, or unsubscribed since.
    STALE = "stale"


def reserve_queued(
    sessions: sessionmaker[Session], item: QueuedConfirmation, now: datetime
) -> ConfirmationRequest | None:
    """The confirmation email a queued sign-up is due, reserved; None (row dropped) if none.

    None when the address is already active (nothing to confirm) or one was
    sent within :data:`CONFIRM_INTERVAL`. A new address is stored as
    ``pending``; a pending one gets the new first name; one that left keeps
    its status (and stays out of every campaign) until the person confirms.
    A row whose earlier attempt failed keeps its reservation while it still
    stands (not confirmed, left or replaced since), so the retry resends it.
    """
    for attempt in range(1, _WRITE_ATTEMPTS + 1):
        try:
            with sessions.begin() as session:
                if item.reserved_at is None:
                    found = _reserve(session, item.email, item.first_name, now, item.source)
                else:
                    found = _still_reserved(session, item)
                if found is None:
                    confirmations.drop(session, item.id)
                else:
                    confirmations.mark_reserved(
                        session, item.id, found.subscriber_id, found.sent_at
                    )
                return found
        except IntegrityError:
            # Another request inserted the same address first: read it again.
            if attempt == _WRITE_ATTEMPTS:
                raise
    raise AssertionError("unreachable")


def _reserve(
    session: Session, email: str, first_name: str | None, now: datetime, source: str
) -> ConfirmationRequest | None:
    subscriber = find(session, email)
    if subscriber is None:
        subscriber = Subscriber(
            email=email,
            first_name=first_name,
            status=SubscriberStatus.PENDING,
            tags=[],
            fields={},
            source=source,
        )
        session.add(subscriber)
    else:
        last = subscriber.confirm_sent_at
        recently_sent = last is not None and now - last < CONFIRM_INTERVAL
        if subscriber.status == SubscriberStatus.ACTIVE or recently_sent:
            return None
        if subscriber.status == SubscriberStatus.PENDING and first_name:
            subscriber.first_name = first_name
    subscriber.confirm_sent_at = now
    session.flush()
    return ConfirmationRequest(subscriber_id=subscriber.id, email=subscriber.email, sent_at=now)


def _still_reserved(session: Session, item: QueuedConfirmation) -> ConfirmationRequest | None:
    if item.subscriber_id is None or item.reserved_at is None:
        return None
    subscriber = session.get(Subscriber, item.subscriber_id)
    if (
        subscriber is None
        or subscriber.email != item.email
        or subscriber.status == SubscriberStatus.ACTIVE
        or subscriber.confirm_sent_at != item.reserved_at
    ):
        return None
    return ConfirmationRequest(subscriber.id, subscriber.email, item.reserved_at)


def release_confirmation(sessions: sessionmaker[Session], request: ConfirmationRequest) -> None:
    """The email could not be sent (given up): let the person ask again at once."""
    with sessions.begin() as session:
        subscriber = session.get(Subscriber, request.subscriber_id)
        if subscriber is not None and subscriber.confirm_sent_at == request.sent_at:
            subscriber.confirm_sent_at = None


def confirm_subscription(
    sessions: sessionmaker[Session],
    claims: TokenClaims,
    now: datetime,
    ip: str,
    *,
    secret_key: str,
    welcome: int | None = None,
) -> ConfirmOutcome:
    """Activate the subscriber a verified ``confirm`` token names, recording the consent.

    ``welcome`` (the welcome campaign's id): their welcome row is added in the
    same transaction (once ever: a re-subscription after leaving adds none).

    Only the latest confirmation email's link works, and only once; a link
    issued before the person last unsubscribed never brings them back. If the
    address was erased at the person's request, this (their own consent, from
    their own mailbox) is what lifts the erasure: its digest under
    ``secret_key`` is dropped, so imports and the webhook accept it again.
    """
    with sessions.begin() as session:
        subscriber = session.get(Subscriber, claims.subscriber_id)
        if subscriber is None or not claims.matches(subscriber.email):
            return ConfirmOutcome.STALE
        if subscriber.status == SubscriberStatus.ACTIVE:
            return ConfirmOutcome.ALREADY_ACTIVE
        sent_at = subscriber.confirm_sent_at
        if sent_at is None or claims.issued_at is None:
            return ConfirmOutcome.STALE
        # Token stamps are whole seconds.
        if claims.issued_at < sent_at.replace(microsecond=0):
            return ConfirmOutcome.STALE
        left_at = subscriber.unsubscribed_at
        if subscriber.status in LEFT_STATUSES and left_at is not None and left_at > sent_at:
            return ConfirmOutcome.STALE
        subscriber.status = SubscriberStatus.ACTIVE
        subscriber.unsubscribed_at = None
        subscriber.consent_at = now
        subscriber.consent_source = CONSENT_SOURCE
        subscriber.consent_ip = ip[:45]
        subscriber.confirm_sent_at = None
        unerase(session, erasure_digest(secret_key, subscriber.email))
        if welcome is not None:
            enrol_ids(session, welcome, [subscriber.id])
        return ConfirmOutcome.CONFIRMED
