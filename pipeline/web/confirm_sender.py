"""The background sender of confirmation emails.

The sign-up form only queues a row (:mod:`pipeline.store.confirmations`): the
person typing sees the same page, with the same status and timing, whether
their address is new, active or gone, and whether the mail service is up.
This sender works through the queue: it decides whether an email is due
(:func:`~pipeline.store.signups.reserve_queued`), sends it, and on failure logs
it and tries again later (:data:`RETRY_DELAYS`), giving up after
:data:`GIVE_UP_AFTER`.

``newsletter serve`` (and ``make run``, which serves too) runs :meth:`run` in
a thread for as long as the app runs; the form wakes it, so an email leaves
within moments. Tests call :meth:`step` directly, on the newsletter's clock.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta
from typing import Final

from pipeline import links
from pipeline.errors import TransportError
from pipeline.newsletter import Newsletter
from pipeline.store import confirmations
from pipeline.store.confirmations import QueuedConfirmation
from pipeline.store.signups import ConfirmationRequest, release_confirmation, reserve_queued
from pipeline.tokens import TokenSigner
from pipeline.web.confirm_email import send_confirm_email

_log = logging.getLogger(__name__)

#: Waits after the 1st, 2nd, ... failed attempt; the last one repeats.
RETRY_DELAYS: Final = (
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=15),
    timedelta(hours=1),
)
#: A sign-up whose email still has not left this long after it was asked for is dropped
#: (logged); the person can ask again.
GIVE_UP_AFTER: Final = timedelta(hours=24)
#: How long a taken row is left to one sender before another may take it.
LEASE: Final = timedelta(minutes=10)
#: Seconds between looks at the queue when nobody wakes the sender (retries fall due).
POLL_SECONDS: Final = 5.0
#: Rows taken per step.
BATCH: Final = 50


class ConfirmationSender:
    """Sends queued confirmation emails; one :meth:`step` is one pass over what is due."""

    def __init__(self, newsletter: Newsletter, signer: TokenSigner) -> None:
        self._newsletter = newsletter
        self._signer = signer
        self._base_url = newsletter.settings.web.base_url
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def wake(self) -> None:
        """Something was queued: look at the queue now rather than at the next poll."""
        self._wake.set()

    def step(self) -> int:
        """Handle every row due now (at most :data:`BATCH`); the number handled."""
        sessions = self._newsletter.sessions
        now = self._newsletter.clock()
        items = confirmations.claim_due(sessions, now, lease=LEASE, limit=BATCH)
        for item in items:
            self._handle(item, now)
        return len(items)

    def _handle(self, item: QueuedConfirmation, now: datetime) -> None:
        sessions = self._newsletter.sessions
        reserved = reserve_queued(sessions, item, now)
        if reserved is None:
            return  # active, or emailed within the hour: nothing to send (row dropped)
        try:
            self._send(reserved)
        except TransportError as error:
            self._failed(item, reserved, now, error)
            return
        confirmations.finish(sessions, item.id)

    def _send(self, reserved: ConfirmationRequest) -> None:
        token = self._signer.issue("confirm", reserved.subscriber_id, reserved.email)
        leave = self._signer.issue("unsubscribe", reserved.subscriber_id, reserved.email)
        send_confirm_email(
            self._newsletter,
            to=reserved.email,
            subscriber_id=reserved.subscriber_id,
            confirm_url=links.confirm_url(self._base_url, token),
            unsubscribe_url=links.unsubscribe_url(self._base_url, leave),
        )

    def _failed(
        self,
        item: QueuedConfirmation,
        reserved: ConfirmationRequest,
        now: datetime,
        error: TransportError,
    ) -> None:
        sessions = self._newsletter.sessions
        attempts = item.attempts + 1
        # The subscriber's id, not the address: logs are kept longer than the queue.
        if now - item.requested_at >= GIVE_UP_AFTER:
            _log.error(
                "confirmation email for subscriber %d not sent after %d attempts; "
                "dropped (they can sign up again): %s",
                reserved.subscriber_id,
                attempts,
                error,
            )
            release_confirmation(sessions, reserved)
            confirmations.finish(sessions, item.id)
            return
        retry_at = now + RETRY_DELAYS[min(attempts, len(RETRY_DELAYS)) - 1]
        _log.warning(
            "confirmation email for subscriber %d not sent (attempt %d), retrying at %s: %s",
            reserved.subscriber_id,
            attempts,
            retry_at.isoformat(timespec="seconds"),
            error,
        )
        confirmations.retry_later(sessions, item.id, attempts, retry_at, str(error))

    # -- the background thread -----------------------------------------------------------

    def run(self) -> None:
        """Send until :meth:`stop`; a failing step is logged and the loop goes on."""
        while not self._stop.is_set():
            self._wake.clear()
            try:
                handled = self.step()
            except Exception:  # a database hiccup must not end the sender
                _log.exception("confirmation sender: a pass over the queue failed")
                handled = 0
            if handled < BATCH:
                self._wake.wait(POLL_SECONDS)

    def start(self) -> None:
        """Run :meth:`run` in a daemon thread."""
        self._stop.clear()
        self._thread = threading.Thread(target=self.run, name="confirmation-sender", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the thread after the email in hand (waits at most ``timeout`` seconds)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
