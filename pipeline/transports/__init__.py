"""Ways out for messages, chosen by ``[sending] transport`` in settings.

Provider names map to implementations through a plain dict; core code never
branches on the transport's name.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from ..config import Settings
from ..errors import ConfigError
from .base import (
    CampaignMessage,
    DeliveryResult,
    Outcome,
    PerMessageTransport,
    Recipient,
    Transport,
)
from .outbox import OutboxTransport

TransportFactory = Callable[[Settings, Callable[[], datetime]], Transport]


def _outbox(settings: Settings, clock: Callable[[], datetime]) -> Transport:
    return OutboxTransport(settings.outbox_path, clock)


#: name in settings -> factory. SMTP and SendGrid join this table when they land.
TRANSPORTS: dict[str, TransportFactory] = {"outbox": _outbox}


def make_transport(settings: Settings, clock: Callable[[], datetime]) -> Transport:
    """The transport settings ask for; :class:`ConfigError` for an unknown name."""
    try:
        factory = TRANSPORTS[settings.sending.transport]
    except KeyError:
        known = ", ".join(sorted(TRANSPORTS))
        raise ConfigError(
            f"sending.transport: unknown transport {settings.sending.transport!r} "
            f"(available: {known})"
        ) from None
    return factory(settings, clock)


__all__ = [
    "TRANSPORTS",
    "CampaignMessage",
    "DeliveryResult",
    "OutboxTransport",
    "Outcome",
    "PerMessageTransport",
    "Recipient",
    "Transport",
    "make_transport",
]
