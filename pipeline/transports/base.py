"""The one small interface every way out implements.

Modelled on django-anymail's base backend: the base class owns the fixed steps
(personalize, build the message, hand it over, normalize the outcome); a
provider module only says how one message, or one batch, leaves.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from types import TracebackType
from typing import ClassVar, Self

from ..message import OutgoingEmail, Sender, new_message_id
from ..render import Personalizer, RenderedIssue


class Outcome(StrEnum):
    """The normalized result of handing one recipient's message over."""

    SENT = "sent"
    FAILED = "failed"


@dataclass(frozen=True)
class Recipient:
    """One addressee of a campaign, with what is personal to them."""

    email: str
    first_name: str
    unsubscribe_url: str
    delivery_id: int | None = None
    subscriber_id: int | None = None

    def values(self) -> dict[str, str]:
        """Values for the issue's placeholders."""
        return {"first_name": self.first_name, "unsubscribe_url": self.unsubscribe_url}


@dataclass(frozen=True)
class CampaignMessage:
    """What is the same for every recipient of one campaign."""

    campaign: str
    issue: RenderedIssue
    sender: Sender


@dataclass(frozen=True)
class DeliveryResult:
    """What happened to one recipient's message."""

    recipient: Recipient
    outcome: Outcome
    message_id: str | None = None
    error: str | None = None


class Transport(ABC):
    """A way out for messages. Use as a context manager around a run."""

    #: The name settings use to choose this transport.
    name: ClassVar[str]

    def open(self) -> None:  # noqa: B027 - optional hook
        """Acquire connections; the default needs none."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections; the default holds none."""

    def __enter__(self) -> Self:
        self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @abstractmethod
    def send_batch(
        self, message: CampaignMessage, recipients: Sequence[Recipient]
    ) -> list[DeliveryResult]:
        """Send one batch; return one result per recipient, in order."""


class PerMessageTransport(Transport):
    """A transport that hands over one whole MIME message per recipient."""

    def __init__(self, clock: Callable[[], datetime]) -> None:
        self._clock = clock
        self._personalizers: dict[int, Personalizer] = {}

    def _personalizer(self, issue: RenderedIssue) -> Personalizer:
        # Precompiled once per campaign, then reused for every recipient.
        key = id(issue)
        if key not in self._personalizers:
            self._personalizers = {key: Personalizer(issue)}
        return self._personalizers[key]

    def personalize(self, message: CampaignMessage, recipient: Recipient) -> OutgoingEmail:
        """Merge the recipient's values into the campaign's rendered issue."""
        personalizer = self._personalizer(message.issue)
        values = recipient.values()
        return OutgoingEmail(
            sender=message.sender,
            to=recipient.email,
            subject=message.issue.subject,
            text=personalizer.text(values),
            html=personalizer.html(values),
            unsubscribe_url=recipient.unsubscribe_url,
            date=self._clock(),
            message_id=new_message_id(message.sender),
            campaign=message.campaign,
        )

    def send_batch(
        self, message: CampaignMessage, recipients: Sequence[Recipient]
    ) -> list[DeliveryResult]:
        """Send each recipient's message in turn; one failure does not stop the rest."""
        return [self.deliver(self.personalize(message, r), r) for r in recipients]

    @abstractmethod
    def deliver(self, email: OutgoingEmail, recipient: Recipient) -> DeliveryResult:
        """Hand over one message."""
