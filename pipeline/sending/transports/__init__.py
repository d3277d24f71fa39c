"""Ways out for messages, chosen by ``[sending] transport`` in settings.

Provider names map to implementations through a plain dict
(:data:`TRANSPORTS`); core code never branches on the transport's name. Each
built-in entry is a :class:`Provider`: its factory, the settings section it
reads and that section's model. Adding a provider: see the contract at the top
of :mod:`pipeline.sending.transports.base`.

Why the public names of ``base`` and ``outbox`` load on first use (PEP 562
``__getattr__``) instead of at import: :mod:`pipeline.config` imports the
providers' settings models from this package, and ``base`` imports the
renderer, which imports :mod:`pipeline.config`. Loaded eagerly, that chain
would run while the settings module is half built; this module itself needs
only the light ``*_settings`` modules.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeAlias

from pydantic import BaseModel

from pipeline.errors import ConfigError
from pipeline.sending.transports.sendgrid_settings import SendGridSettings
from pipeline.sending.transports.smtp_settings import SmtpSettings

if TYPE_CHECKING:
    from pipeline.config import Settings
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


TransportFactory: TypeAlias = "Callable[[TransportEnv], Transport]"


@dataclass(frozen=True)
class Provider:
    """One registry entry: how the transport is built and which settings it owns.

    ``section`` is the ``[section]`` of ``newsletter.toml`` (a field of
    :class:`~pipeline.config.Settings`) validated by ``settings_model``; None
    for a transport without options of its own. Called like its factory, so
    :data:`TRANSPORTS` holds plain factories too (tests register lambdas).
    """

    factory: TransportFactory
    section: str | None = None
    settings_model: type[BaseModel] | None = None

    def __call__(self, env: TransportEnv) -> Transport:
        return self.factory(env)


def _outbox(env: TransportEnv) -> Transport:
    from pipeline.sending.transports.outbox import OutboxTransport

    return OutboxTransport(env.settings.outbox_path, env.clock)


def _smtp(env: TransportEnv) -> Transport:
    from pipeline.sending.transports.smtp import SmtpTransport

    return SmtpTransport.from_env(env)


def _sendgrid(env: TransportEnv) -> Transport:
    from pipeline.sending.transports.sendgrid import SendGridTransport

    return SendGridTransport.from_env(env)


#: name in settings -> factory (imported lazily: outbox needs no provider library).
TRANSPORTS: dict[str, TransportFactory] = {
    "outbox": Provider(_outbox),
    "smtp": Provider(_smtp, "smtp", SmtpSettings),
    "sendgrid": Provider(_sendgrid, "sendgrid", SendGridSettings),
}


def provider_sections() -> dict[str, type[BaseModel]]:
    """Settings section -> its model, for every registered provider that has one."""
    return {
        entry.section: entry.settings_model
        for entry in TRANSPORTS.values()
        if isinstance(entry, Provider)
        and entry.section is not None
        and entry.settings_model is not None
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


#: Public names of the submodules, loaded on first use (see the module docstring).
_LAZY: dict[str, str] = {
    **dict.fromkeys(
        (
            "CampaignMessage",
            "DeliveryResult",
            "Outcome",
            "PerMessageTransport",
            "Recipient",
            "Sleep",
            "StillWanted",
            "Transport",
            "TransportStopError",
        ),
        "base",
    ),
    "OutboxTransport": "outbox",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


__all__ = [
    "TRANSPORTS",
    "CampaignMessage",
    "DeliveryResult",
    "OutboxTransport",
    "Outcome",
    "PerMessageTransport",
    "Provider",
    "Recipient",
    "SendGridSettings",
    "Sleep",
    "SmtpSettings",
    "StillWanted",
    "Transport",
    "TransportEnv",
    "TransportFactory",
    "TransportStopError",
    "make_transport",
    "provider_sections",
]
