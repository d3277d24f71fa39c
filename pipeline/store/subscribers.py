"""The statements behind the subscriber list (:mod:`pipeline.subscribers`).

Lookups by address or id, keyset pages for listing, the bulk insert an import
writes per chunk, and turning pending ledger rows of people who left into
``suppressed``. The rules (consent, merging, erasure) stay with the callers in
:mod:`pipeline.subscribers`; each function here runs inside the caller's
session, so the caller decides what is one transaction. The two functions for
the unsubscribe pages open their own short sessions, so the web routes hold no
database code at all.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from pipeline.store.models import Delivery, DeliveryStatus, Subscriber, SubscriberStatus
from pipeline.tokens import TokenClaims


def find(session: Session, address: str) -> Subscriber | None:
    """The subscriber stored under this (normalized) address, if any."""
    return session.scalar(select(Subscriber).where(Subscriber.email == address))


def find_many(session: Session, addresses: Iterable[str]) -> dict[str, Subscriber]:
    """The subscribers stored under these addresses, by address."""
    wanted = list(addresses)
    return {
        s.email: s for s in session.scalars(select(Subscriber).where(Subscriber.email.in_(wanted)))
    }


def page(
    session: Session, *, after_id: int, status: SubscriberStatus | None, limit: int
) -> list[Subscriber]:
    """Up to ``limit`` subscribers (with ``status``, if given) whose id follows ``after_id``."""
    query = select(Subscriber).where(Subscriber.id > after_id)
    if status is not None:
        query = query.where(Subscriber.status == status)
    query = query.order_by(Subscriber.id).limit(limit)
    return list(session.scalars(query))


def add(session: Session, subscriber: Subscriber) -> Subscriber:
    """Store a new subscriber (written at the session's next flush)."""
    session.add(subscriber)
    return subscriber


def insert_many(session: Session, rows: list[dict[str, object]]) -> None:
    """Insert new subscribers given as column values."""
    if rows:
        # One bulk INSERT per chunk: several times faster than ORM objects.
        session.execute(insert(Subscriber), rows)


def suppress_pending(session: Session, subscriber_ids: list[int]) -> None:
    """Pending ledger rows of these subscribers will not be sent."""
    if not subscriber_ids:
        return
    session.execute(
        update(Delivery)
        .where(
            Delivery.subscriber_id.in_(subscriber_ids),
            Delivery.status == DeliveryStatus.PENDING,
        )
        .values(status=DeliveryStatus.SUPPRESSED),
        execution_options={"synchronize_session": False},
    )


@dataclass(frozen=True)
class TokenHolder:
    """The subscriber a token names, detached from the database."""

    id: int
    email: str
    status: SubscriberStatus


def token_holder(sessions: sessionmaker[Session], claims: TokenClaims) -> TokenHolder | None:
    """Who verified ``claims`` name; None when no such subscriber (or a different address)."""
    with sessions() as session:
        subscriber = session.get(Subscriber, claims.subscriber_id)
        if subscriber is None or not claims.matches(subscriber.email):
            return None
        return TokenHolder(subscriber.id, subscriber.email, SubscriberStatus(subscriber.status))


def stamp_left_by_link(sessions: sessionmaker[Session], subscriber_id: int, when: datetime) -> None:
    """After an unsubscribe link: no older confirm link works, and ``when`` is the leaving time."""
    with sessions.begin() as session:
        subscriber = session.get(Subscriber, subscriber_id)
        if subscriber is not None:
            # A confirmation link still in their mailbox must not bring them back.
            subscriber.confirm_sent_at = None
            # On the app's clock, which confirmation times are measured on too.
            subscriber.unsubscribed_at = when


def count_by_status(sessions: sessionmaker[Session]) -> dict[SubscriberStatus, int]:
    """How many subscribers are in each state (every state listed, zero included)."""
    counts = dict.fromkeys(SubscriberStatus, 0)
    with sessions() as session:
        for status, n in session.execute(
            select(Subscriber.status, func.count()).group_by(Subscriber.status)
        ):
            counts[SubscriberStatus(status)] = int(n)
    return counts
