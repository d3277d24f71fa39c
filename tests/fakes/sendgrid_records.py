"""What the fake SendGrid (sendgrid_server.py) records, for tests to read back.

Each request it read is a :class:`ReceivedRequest`; each personalization of an
accepted one is a :class:`Delivery` (``SendGridServer.deliveries()``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tests.fakes.sendgrid_validation import ApiError


@dataclass(frozen=True)
class ReceivedRequest:
    """One request the server read, and what it did with it."""

    index: int
    received_at: float  # time.time()
    size: int
    body: Any  # parsed JSON, None when it was not JSON
    authorized: bool
    accepted: bool  # delivered: counted by deliveries()
    status: int | None  # None: never answered (hung or dropped)
    behaviour: str  # "normal", "reply", "hang" or "drop"
    errors: tuple[ApiError, ...] = ()
    message_id: str | None = None

    @property
    def sandbox(self) -> bool:
        """Whether the request asked for sandbox mode (validated, never delivered)."""
        settings = self.body.get("mail_settings", {}) if isinstance(self.body, dict) else {}
        return bool(settings.get("sandbox_mode", {}).get("enable"))


@dataclass(frozen=True)
class Delivery:
    """One personalization of an accepted request: who got it, with what values."""

    email: str
    substitutions: Mapping[str, str]
    custom_args: Mapping[str, str]
    headers: Mapping[str, str]
    message_id: str | None
    request_index: int
