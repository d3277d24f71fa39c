"""SendGrid's Event Webhook JSON, read into :class:`~pipeline.events.model.DeliveryEvent`.

Only parsing lives here; storing and acting on events is
:mod:`pipeline.events.record`. What SendGrid's events mean for the person
(``DeliveryEvent.leaves``):

* ``bounce`` (a hard bounce; ``type: blocked`` is a temporary refusal) -> bounced
* ``spamreport`` -> complained
* ``unsubscribe`` / ``group_unsubscribe`` -> unsubscribed
* ``dropped`` -> by SendGrid's reason: a suppressed or invalid address is
  bounced/complained/unsubscribed; a problem with the message itself
  ("Invalid SMTPAPI header", "Spam Content", size or quota) says nothing about
  the person and suppresses no one.

No event keeps the IP address or user agent SendGrid reports for opens and
clicks: nothing here uses them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Final

from pipeline.errors import InvalidAddressError
from pipeline.events.model import DeliveryEvent, EventKind
from pipeline.store.models import SubscriberStatus
from pipeline.subscribers.addresses import normalize_address

PROVIDER: Final = "sendgrid"

#: SendGrid's event names -> the normalized kind (unlisted names are OTHER).
KINDS: Final = {
    "processed": EventKind.PROCESSED,
    "delivered": EventKind.DELIVERED,
    "deferred": EventKind.DEFERRED,
    "bounce": EventKind.BOUNCED,
    "dropped": EventKind.DROPPED,
    "open": EventKind.OPENED,
    "click": EventKind.CLICKED,
    "spamreport": EventKind.COMPLAINED,
    "unsubscribe": EventKind.UNSUBSCRIBED,
    "group_unsubscribe": EventKind.UNSUBSCRIBED,
}

#: ``dropped`` reasons that are about the message, not the address (SendGrid's wording).
_MESSAGE_PROBLEMS: Final = ("smtpapi", "spam content", "exceeded", "quota", "size")

_MAX_REASON = 2000

#: Fields of SendGrid's events that describe the reader's device, not the delivery.
_NOT_KEPT: Final = frozenset({"ip", "useragent"})


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def parse_event(item: Any, now: datetime) -> DeliveryEvent | None:
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
    name = event.strip().lower()[:32]
    kind = KINDS.get(name, EventKind.OTHER)
    if kind is EventKind.BOUNCED and str(item.get("type", "")).lower() == "blocked":
        kind = EventKind.DEFERRED  # a temporary refusal, not a bounce
    return DeliveryEvent(
        provider=PROVIDER,
        provider_event_id=sg_event_id,
        name=name,
        kind=kind,
        email=address,
        occurred_at=occurred_at,
        campaign=campaign[:200] if isinstance(campaign, str) and campaign else None,
        delivery_id=_int(item.get("delivery_id")),
        subscriber_id=_int(item.get("subscriber_id")),
        detail=str(reason)[:_MAX_REASON] if reason else None,
        raw={key: value for key, value in item.items() if key not in _NOT_KEPT},
        leaves=suppression_for(name, item),
    )


def parse_events(items: Iterable[Any], now: datetime) -> list[DeliveryEvent | None]:
    """Each item read as an event; None where it is not one (counted as invalid)."""
    return [parse_event(item, now) for item in items]


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
