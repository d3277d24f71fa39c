"""Ways out for messages, chosen by ``[sending] transport`` in settings.

Provider names map to implementations through a plain dict; core code never
branches on the transport's name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from pipeline.config import Settings
from pipeline.errors import ConfigError
from pipeline.sending.transports.base import (
    CampaignMessage,
    DeliveryResult,
    Outcome,
    PerMessageTransport,
    Recipient,
    Sleep,
    StillWanted,
    Transport,
    TransportStopError,
)
from pipeline.sending.transports.outbox import OutboxTransport


@dataclass(frozen=True)
class TransportEnv:
    """What a transport is built from: settings, a clock and a way to wait.

    ``sleep`` is for tests; None (the default) waits on the transport's stop
    event, so a stop request ends any wait at once.
    """

    settings: Settings
    clock: Callable[[], datetime]
    sleep: Sleep | None = None


TransportFactory = Callable[[TransportEnv], Transport]


def _outbox(env: TransportEnv) -> Transport:
    return OutboxTransport(env.settings.outbox_path, env.clock)


def _smtp(env: TransportEnv) -> Transport:
    from pipeline.sending.transports.smtp import SmtpTransport

    return SmtpTransport.from_env(env)


def _sendgrid(env: TransportEnv) -> Transport:
    from pipeline.sending.transports.sendgrid import SendGridTransport

    return SendGridTransport.from_env(env)


#: name in settings -> factory (imported lazily: outbox needs no provider library).
TRANSPORTS: dict[str, TransportFactory] = {
    "outbox": _outbox,
    "smtp": _smtp,
    "sendgrid": _sendgrid,
}


def make_transport(
    settings: Settings, clock: Callable[[], datetime], sleep: Sleep | None = None
) -> Transport:
    """The transport settings ask for; :class:`ConfigError` for an unknown name."""
    env = TransportEnv(settings=settings, clock=clock, sleep=sleep)
    try:
        factory = TRANSPORTS[settings.sending.transport]
    except KeyError:
        known = ", ".join(sorted(TRANSPORTS))
        raise ConfigError(
            f"sending.transport: unknown transport {settings.sending.transport!r} "
            f"(available: {known})"
        ) from None
    return factory(env)


__all__ = [
    "TRANSPORTS",
    "CampaignMessage",
    "DeliveryResult",
    "OutboxTransport",
    "Outcome",
    "PerMessageTransport",
    "Recipient",
    "Sleep",
    "StillWanted",
    "Transport",
    "TransportEnv",
    "TransportFactory",
    "TransportStopError",
    "make_transport",
]
