"""The one delivery event record every provider's webhook parser produces.

A parser (``pipeline/events/<provider>.py``) reads its provider's JSON into
:class:`DeliveryEvent`; the recorder (:mod:`pipeline.events.record`) stores it
and acts on it without knowing which provider sent it. What an event means
for the person (``leaves``) is decided by the parser, because only the
provider's own fields tell a hard bounce from a temporary block.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from pipeline.store.models import SubscriberStatus


class EventKind(StrEnum):
    """What happened to a message, in words no provider owns."""

    PROCESSED = "processed"
    DELIVERED = "delivered"
    DEFERRED = "deferred"  # a temporary refusal: the provider tries again
    BOUNCED = "bounced"
    DROPPED = "dropped"  # the provider did not send it
    OPENED = "opened"
    CLICKED = "clicked"
    UNSUBSCRIBED = "unsubscribed"
    COMPLAINED = "complained"
    OTHER = "other"


@dataclass(frozen=True)
class DeliveryEvent:
    """One provider event, normalized; stored once per ``(provider_event_id)``."""

    provider: str
    #: The provider's id for the event (unique across providers: see transports/base.py).
    provider_event_id: str
    #: The provider's own name for the event ("bounce"), stored as it came.
    name: str
    kind: EventKind
    email: str
    occurred_at: datetime
    campaign: str | None
    delivery_id: int | None
    subscriber_id: int | None
    #: The provider's reason or server response, if any.
    detail: str | None
    #: The event as received, minus what is not kept (the reader's IP, user agent).
    raw: Mapping[str, Any]
    #: The status the event puts its subscriber in; None when it suppresses no one.
    leaves: SubscriberStatus | None = None
