"""Delivery events from providers, normalized into one record.

``model.py`` holds :class:`DeliveryEvent`; one parser per provider
(``sendgrid.py``) reads that provider's webhook JSON into it; ``record.py``
stores events and suppresses who must not be mailed, whoever sent them.
:data:`PARSERS` is the registry: provider name -> parser.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, TypeAlias

from sqlalchemy.orm import Session, sessionmaker

from pipeline.events import sendgrid
from pipeline.events.model import DeliveryEvent, EventKind
from pipeline.events.record import EventReport, store_events
from pipeline.store.events import event_counts

#: Reads a provider's webhook items; None for an item that is no event.
Parser: TypeAlias = Callable[[Iterable[Any], datetime], list[DeliveryEvent | None]]

#: provider name -> its webhook parser.
PARSERS: dict[str, Parser] = {
    sendgrid.PROVIDER: sendgrid.parse_events,
}


def record_events(
    sessions: sessionmaker[Session],
    items: Iterable[Any],
    now: datetime,
    *,
    secret_key: str,
    provider: str = sendgrid.PROVIDER,
) -> EventReport:
    """Parse a provider's webhook items with its parser, then store and act on them."""
    return store_events(sessions, PARSERS[provider](items, now), now, secret_key=secret_key)


__all__ = [
    "PARSERS",
    "DeliveryEvent",
    "EventKind",
    "EventReport",
    "Parser",
    "event_counts",
    "record_events",
    "store_events",
]
