"""The one small interface every way out implements, and how to add a provider.

Modelled on django-anymail's base backend: the base class owns the fixed steps
(personalize, build the message, hand it over, normalize the outcome); a
provider module only says how one message, or one batch, leaves.

Adding a provider (say Postmark) is four things, and nothing else changes:

1. One module under ``transports/`` (``postmark.py``): for an HTTP API, a
   subclass of :class:`~pipeline.sending.transports.http.HttpTransport` that
   sets ``name``, ``label`` and ``status_verdicts`` (a plain dict of HTTP
   status -> ``Verdict``) and builds and posts the request body; the shared
   layer does batching, retries, 429 waits, backoff, "maybe accepted ->
   uncertain" and stopping. A per-message protocol subclasses
   :class:`PerMessageTransport` and implements ``deliver``. Its ``[postmark]``
   options are a pydantic model in ``transports/postmark_settings.py`` (a
   module of its own: ``pipeline.config`` imports it for ``Settings.postmark``,
   one typed field, so ``settings.postmark`` stays checked by mypy).
2. One parser under ``events/`` (``postmark.py``) that reads the provider's
   webhook JSON into :class:`~pipeline.events.model.DeliveryEvent`, deciding
   ``kind`` and ``leaves``; ``provider_event_id`` must not collide with another
   provider's ids (prefix them, e.g. ``"postmark:" + id``; SendGrid's are
   stored bare, as they always were). Its line in ``pipeline.events.PARSERS``.
3. One registry line in :data:`pipeline.sending.transports.TRANSPORTS`:
   ``"postmark": Provider(_postmark, "postmark", PostmarkSettings)`` (factory,
   settings section, settings model).
4. One test file, ``tests/test_postmark.py``, against a loopback server as
   ``tests/sending/test_transport_contract.py`` shows.
"""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from types import TracebackType
from typing import ClassVar, NamedTuple, Self

from pipeline.errors import TransportError
from pipeline.render import Personalizer, RenderedIssue
from pipeline.render.message import OutgoingEmail, Sender, new_message_id
from pipeline.sending.plan import TransportKind


class Outcome(StrEnum):
    """The normalized result of handing one recipient's message over.

    ``DEFERRED`` means certainly not handed over (the row goes back to pending
    for a later run); ``UNCERTAIN`` means it may or may not have left (a
    timeout or a dropped connection after the request was written), which the
    ledger reports instead of guessing. ``SUPPRESSED`` means not handed over
    because the person left (unsubscribed, bounced, erased) while the batch
    was out: it must never be sent.
    """

    SENT = "sent"
    FAILED = "failed"
    UNCERTAIN = "uncertain"
    DEFERRED = "deferred"
    SUPPRESSED = "suppressed"


class TransportStopError(TransportError):
    """The provider refuses every message (bad key, no permission): stop the campaign.

    Raised only when nothing of the current batch was handed over, so its rows
    can safely go back to pending. The message never contains a secret.

    ``needs_owner`` (the default) says retrying cannot help until a person acts
    (the credentials, the sender address or the endpoint were refused): the
    scheduler then leaves the campaign waiting for its owner instead of
    retrying it with backoff.
    """

    def __init__(self, message: str, *, needs_owner: bool = True) -> None:
        super().__init__(message)
        self.needs_owner = needs_owner


class FailureKind(StrEnum):
    """Why a message failed, stored with the row so that a retry is decided by data.

    ``send --retry-failed`` sends again only the kinds in :data:`RETRYABLE_FAILURES`:
    those where the fault was the request, the provider or the network, which
    the owner may have fixed since. A refusal of the person is never retried.
    """

    BATCH = "batch"  # the provider refused the whole request (400/413)
    RETRIES = "retries"  # the provider kept failing until the retries ran out
    NETWORK = "network"  # the provider could not be reached until the retries ran out
    RECIPIENT = "recipient"  # refused for this person (unknown user, invalid address)
    MESSAGE = "message"  # this one message refused (an SMTP 5xx after DATA)
    DUPLICATE = "duplicate"  # the same address twice in a batch: the other copy went


#: Failures that a fix on the owner's side may cure: ``send --retry-failed`` sends them.
RETRYABLE_FAILURES = frozenset({FailureKind.BATCH, FailureKind.RETRIES, FailureKind.NETWORK})


#: How a transport waits (429 backoff, retry delays). Tests pass a fake; without
#: one, a transport waits on its stop event, so :meth:`Transport.request_stop`
#: (a SIGTERM, a Ctrl-C) cuts any wait short at once.
Sleep = Callable[[float], None]

#: Of these subscriber ids, the ones still active (still to be mailed). The
#: runner hands a per-message transport the ledger's answer to this question.
StillWanted = Callable[[Collection[int]], set[int]]

#: A per-message transport asks :data:`StillWanted` once per this many messages:
#: one query per few dozen messages, so an unsubscribe is honoured within
#: seconds of an SMTP batch that takes minutes, at a negligible cost.
RECHECK_EVERY = 25

_log = logging.getLogger(__name__)


# Recipient and DeliveryResult are named tuples, not frozen dataclasses: both
# are made once per recipient per campaign, and a tuple is made in a third of
# the time (frozen dataclasses set each field through object.__setattr__).
# Just as immutable; a million-row campaign makes two million of them.


class Recipient(NamedTuple):
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


class DeliveryResult(NamedTuple):
    """What happened to one recipient's message."""

    recipient: Recipient
    outcome: Outcome
    message_id: str | None = None
    error: str | None = None
    #: Why it failed (FAILED, or DEFERRED after retries); None when it did not fail.
    failure_kind: FailureKind | None = None
    #: The mailbox does not exist (SMTP 550 5.1.1 and kin): the subscriber bounced.
    address_gone: bool = False


class Transport(ABC):
    """A way out for messages. Use as a context manager around a run."""

    #: The name settings use to choose this transport.
    name: ClassVar[str]
    #: How auto settings give it lanes (:mod:`pipeline.sending.plan`): "api" waits
    #: on the network, "smtp" holds a connection per lane, "local" works on the CPU.
    kind: ClassVar[TransportKind] = "local"
    #: Seconds this transport has spent waiting for its provider's answers (an
    #: API transport counts them; auto lanes follow them: pipeline.sending.lanes).
    waited: float = 0.0
    #: An injected wait (tests); None: wait on the stop event.
    _sleep: Sleep | None = None

    @property
    def _stop_event(self) -> threading.Event:
        # Made on first use (subclasses need not call an __init__ here);
        # dict.setdefault is atomic, so a signal handler and a lane thread
        # asking at once still share one event.
        event: threading.Event = self.__dict__.setdefault("_stop", threading.Event())
        return event

    def request_stop(self) -> None:
        """Ask a long batch to end early; the rest of it comes back DEFERRED.

        Safe from a signal handler; a wait in progress (429, retry backoff)
        ends at once.
        """
        self._stop_event.set()

    @property
    def stop_requested(self) -> bool:
        """Whether :meth:`request_stop` was called."""
        return self._stop_event.is_set()

    def pause(self, seconds: float) -> bool:
        """Wait ``seconds``, or less if a stop is requested; True when stopping.

        The real wait is on the stop event, never a blocking sleep, so a stop
        ends it within milliseconds. An injected :data:`Sleep` (tests) runs
        instead, and the stop is checked after it.
        """
        if self._sleep is None:
            return self._stop_event.wait(max(seconds, 0.0))
        self._sleep(seconds)
        return self.stop_requested

    def watch_unsubscribes(self, still_wanted: StillWanted | None) -> None:  # noqa: B027 - optional hook
        """Re-check, while a batch is out, who still wants the newsletter.

        Only transports that hand messages over one by one can use it (see
        :class:`PerMessageTransport`); a batch API call goes out at once.
        """

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
        self._still_wanted: StillWanted | None = None

    def watch_unsubscribes(self, still_wanted: StillWanted | None) -> None:
        """Skip (``SUPPRESSED``) recipients who left since their batch was claimed."""
        self._still_wanted = still_wanted

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
        With :meth:`watch_unsubscribes`, who is still active is asked once per
        :data:`RECHECK_EVERY` messages, just before them; anyone who left
        meanwhile comes back SUPPRESSED and gets nothing.
        """
        results: list[DeliveryResult] = []
        wanted: set[int] | None = None
        unchecked: str | None = None
        for index, recipient in enumerate(recipients):
            if index % RECHECK_EVERY == 0 and unchecked is None and not self.stop_requested:
                wanted, unchecked = self._recheck(recipients[index : index + RECHECK_EVERY])
            if self.stop_requested:
                results.append(DeliveryResult(recipient, Outcome.DEFERRED, error="stopped"))
            elif unchecked is not None:
                results.append(DeliveryResult(recipient, Outcome.DEFERRED, error=unchecked))
            elif (
                wanted is not None
                and recipient.subscriber_id is not None
                and recipient.subscriber_id not in wanted
            ):
                results.append(DeliveryResult(recipient, Outcome.SUPPRESSED))
            else:
                results.append(self.deliver(self.personalize(message, recipient), recipient))
        return results

    def _recheck(self, upcoming: Sequence[Recipient]) -> tuple[set[int] | None, str | None]:
        """Who of ``upcoming`` is still active, or why that could not be told."""
        ids = [r.subscriber_id for r in upcoming if r.subscriber_id is not None]
        if self._still_wanted is None or not ids:
            return None, None
        try:
            return self._still_wanted(ids), None
        except Exception as exc:  # the store's error, whatever its kind
            # Without the answer an unsubscribed person might be mailed; the
            # rest of the batch goes back to pending for a later run instead,
            # and what was handed over so far is still recorded.
            _log.warning("could not re-check unsubscribes: %s", exc)
            return None, f"not tried: could not re-check unsubscribes ({type(exc).__name__})"

    @abstractmethod
    def deliver(self, email: OutgoingEmail, recipient: Recipient) -> DeliveryResult:
        """Hand over one message."""
