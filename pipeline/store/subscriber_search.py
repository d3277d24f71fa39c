"""The statements behind the dashboard's subscriber pages: search by address, one person.

Kept apart from :mod:`pipeline.store.subscribers` (the list's writes, which run
inside the caller's transaction): these are reads for pages, each in its own
short session, returning detached frozen records so no route holds a row.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from pipeline.store.models import Subscriber, SubscriberStatus


@dataclass(frozen=True)
class SubscriberSummary:
    """One line of a search result."""

    id: int
    email: str
    first_name: str | None
    last_name: str | None
    status: SubscriberStatus


@dataclass(frozen=True)
class SearchPage:
    """One page of matches, and how many match in all (for "page 2 of 7")."""

    rows: tuple[SubscriberSummary, ...]
    total: int


@dataclass(frozen=True)
class SubscriberDetail:
    """Everything the person's page shows about the subscriber row, consent record included."""

    id: int
    email: str
    first_name: str | None
    last_name: str | None
    status: SubscriberStatus
    tags: tuple[str, ...]
    fields: Mapping[str, str]
    source: str | None
    created_at: datetime
    unsubscribed_at: datetime | None
    consent_at: datetime | None
    consent_source: str | None
    consent_ip: str | None
    confirm_sent_at: datetime | None

    def __post_init__(self) -> None:
        # A private read-only copy: the record stays immutable.
        object.__setattr__(self, "fields", MappingProxyType(dict(self.fields)))


def search_by_address(
    sessions: sessionmaker[Session], text: str, *, offset: int, limit: int
) -> SearchPage:
    """Subscribers whose address contains ``text`` (any case), in address order.

    ``%`` and ``_`` typed by the owner are matched literally (``autoescape``).
    An empty ``text`` matches everyone. Addresses are stored lower-cased, and
    ``lower()`` on the column keeps rows stored under older rules findable.
    """
    condition = func.lower(Subscriber.email).contains(text.strip().lower(), autoescape=True)
    with sessions() as session:
        total = session.scalar(select(func.count()).select_from(Subscriber).where(condition))
        found = session.execute(
            select(
                Subscriber.id,
                Subscriber.email,
                Subscriber.first_name,
                Subscriber.last_name,
                Subscriber.status,
            )
            .where(condition)
            .order_by(Subscriber.email, Subscriber.id)
            .offset(offset)
            .limit(limit)
        )
        rows = tuple(
            SubscriberSummary(id_, email, first, last, SubscriberStatus(status))
            for id_, email, first, last, status in found
        )
    return SearchPage(rows=rows, total=int(total or 0))


def subscriber_detail(
    sessions: sessionmaker[Session], *, subscriber_id: int | None = None, email: str | None = None
) -> SubscriberDetail | None:
    """The subscriber with this id, or stored under this (normalized) address; None if absent."""
    with sessions() as session:
        if subscriber_id is not None:
            row = session.get(Subscriber, subscriber_id)
        elif email is not None:
            row = session.scalar(select(Subscriber).where(Subscriber.email == email))
        else:
            raise ValueError("subscriber_detail needs an id or an address")
        if row is None:
            return None
        return SubscriberDetail(
            id=row.id,
            email=row.email,
            first_name=row.first_name,
            last_name=row.last_name,
            status=SubscriberStatus(row.status),
            tags=tuple(row.tags or ()),
            fields=dict(row.fields or {}),
            source=row.source,
            created_at=row.created_at,
            unsubscribed_at=row.unsubscribed_at,
            consent_at=row.consent_at,
            consent_source=row.consent_source,
            consent_ip=row.consent_ip,
            confirm_sent_at=row.confirm_sent_at,
        )
