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

from ..errors import TransportError
from ..message import OutgoingEmail, Sender, new_message_id
from ..render import Personalizer, RenderedIssue


class Outcome(StrEnum):
    """The normalized result of handing one recipient's message over.

    ``DEFERRED`` means certainly not handed over (the row goes back to pending
    for a later run); ``UNCERTAIN`` means it may or may not have left (a
    timeout or a dropped connection after the request was written), which the
    ledger reports instead of guessing.
    """

    SENT = "sent"
    FAILED = "failed"
    UNCERTAIN = "uncertain"
    DEFERRED = "deferred"


class TransportStopError(TransportError):
    """The provider refuses every message (bad key, no permission): stop the campaign.

    Raised only when nothing of the current batch was handed over, so its rows
    can safely go back to pending. The message never contains a secret.
    """


#: How a transport waits (429 backoff, retry delays). Tests pass a fake.
Sleep = Callable[[float], None]


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
    _stop_requested: bool = False

    def request_stop(self) -> None:
        """Ask a long batch to end early; the rest of it comes back DEFERRED."""
        self._stop_requested = True

    @property
    def stop_requested(self) -> bool:
        """Whether :meth:`request_stop` was called."""
        return self._stop_requested

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
        """Send each recipient's message in turn; one failure does not stop the rest.

        After :meth:`request_stop`, the recipients not reached yet come back
        DEFERRED (never handed over), so the ledger returns them to pending.
        """
        results: list[DeliveryResult] = []
        for recipient in recipients:
            if self.stop_requested:
                results.append(DeliveryResult(recipient, Outcome.DEFERRED, error="stopped"))
            else:
                results.append(self.deliver(self.personalize(message, recipient), recipient))
        return results

    @abstractmethod
    def deliver(self, email: OutgoingEmail, recipient: Recipient) -> DeliveryResult:
        """Hand over one message."""
