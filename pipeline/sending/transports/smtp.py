"""Send through an SMTP server: one message per recipient over one reused connection.

The connection is opened on the first message and kept for every later message
and batch; a server that dropped it meanwhile (idle timeout, a per-connection
message limit) is reconnected to transparently. What a failure means for the
ledger follows the reply, never a guess:

* 2xx: ``SENT``.
* 5xx for a recipient or a message: ``FAILED`` with the server's reply; the
  batch goes on. A refused recipient is failure kind ``recipient`` (never
  retried); a refusal saying the mailbox does not exist (550 5.1.1, 5.1.10,
  5.2.1, "user unknown") also marks the result ``address_gone``, and the runner
  then marks the subscriber ``bounced``.
* 4xx, a dropped connection or a timeout before the message content went out:
  retried with exponential backoff (``smtp.max_retries``), then ``DEFERRED``,
  so the row goes back to pending for a later run. A stop request ends the
  wait at once, with the same result.
* The connection lost after the content went out but before the final reply:
  ``UNCERTAIN``. The server may have queued it, so it is never resent.
* Login refused, STARTTLS missing, an unverifiable certificate, the sender
  address refused: the server refuses everything, so
  :class:`~pipeline.sending.transports.base.TransportStopError` (or, once a recipient
  of the batch has an outcome, sent, refused or in doubt, ``DEFERRED`` for the rest
  of the batch, so that outcome reaches the ledger).

The password never reaches a log line, an error or an exception message.
A transport instance is not thread-safe: use one per sending thread. The
connection itself (connect, STARTTLS, login, reset) is
:mod:`~pipeline.sending.transports.smtp_connection`; what a reply means
(hard bounce or not) is :mod:`~pipeline.sending.transports.smtp_replies`.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, ClassVar, Self

from pydantic import SecretStr

from pipeline.errors import ConfigError, UnsafeHeaderError
from pipeline.render.message import OutgoingEmail, build_message
from pipeline.sending.plan import TransportKind
from pipeline.sending.transports.base import (
    CampaignMessage,
    DeliveryResult,
    FailureKind,
    Outcome,
    PerMessageTransport,
    Recipient,
    Sleep,
    TransportStopError,
)
from pipeline.sending.transports.smtp_connection import SmtpClient, SmtpConnection, SmtpStop
from pipeline.sending.transports.smtp_replies import (
    RECIPIENT_REFUSED,
    Attempt,
    describe,
    mailbox_does_not_exist,
)
from pipeline.sending.transports.smtp_settings import SmtpSettings

if TYPE_CHECKING:
    from pipeline.sending.transports import TransportEnv

logger = logging.getLogger(__name__)

__all__ = ["SmtpSettings", "SmtpTransport", "mailbox_does_not_exist"]

#: First retry delay in seconds; each further retry waits twice as long.
DEFAULT_BACKOFF = 1.0
#: Cap on one retry delay, so a large ``max_retries`` cannot park a send for hours.
DEFAULT_MAX_BACKOFF = 60.0


class _BatchState:
    """What the transport remembers within one batch (mutable on purpose)."""

    def __init__(self) -> None:
        #: A recipient of this batch has an outcome the ledger must get: sent,
        #: in doubt, or refused (a refused mailbox marks its subscriber bounced).
        self.has_outcomes = False
        self.deferred_reason: str | None = None


class SmtpTransport(PerMessageTransport):
    """Hand each recipient's MIME message to an SMTP server with ``sendmail``."""

    name = "smtp"
    kind: ClassVar[TransportKind] = "smtp"

    def __init__(
        self,
        settings: SmtpSettings,
        *,
        from_email: str,
        password: SecretStr | None,
        clock: Callable[[], datetime],
        sleep: Sleep | None = None,
        ssl_context: ssl.SSLContext | None = None,
        local_hostname: str | None = None,
        backoff: float = DEFAULT_BACKOFF,
        max_backoff: float = DEFAULT_MAX_BACKOFF,
    ) -> None:
        """Configure; nothing connects until the first message.

        ``ssl_context`` verifies the server (default: the system's trusted
        certificates, hostname checked). ``local_hostname`` is what EHLO
        announces (default: this machine's FQDN). ``sleep`` is for tests:
        without it, a retry wait ends as soon as a stop is requested.
        """
        super().__init__(clock)
        if settings.username and not (password and password.get_secret_value()):
            raise ConfigError(
                f"smtp.username is set to {settings.username!r} but "
                "NEWSLETTER_SMTP_PASSWORD is not set"
            )
        self.settings = settings
        self.from_email = from_email
        self._sleep = sleep
        self._conn = SmtpConnection(
            settings,
            password=password.get_secret_value() if password else "",
            ssl_context=(
                ssl_context
                if ssl_context is not None or settings.security == "none"
                else ssl.create_default_context()
            ),
            local_hostname=local_hostname,
        )
        self._backoff = backoff
        self._max_backoff = max_backoff
        self._batch: _BatchState | None = None

    @classmethod
    def from_env(cls, env: TransportEnv, *, ssl_context: ssl.SSLContext | None = None) -> Self:
        """Build from settings (``[smtp]``, ``[email] from_email``, the password)."""
        return cls(
            env.settings.smtp,
            from_email=env.settings.email.from_email,
            password=env.settings.smtp_password,
            clock=env.clock,
            sleep=env.sleep,
            ssl_context=ssl_context,
        )

    @property
    def server(self) -> str:
        """``host:port``, for messages."""
        return self._conn.server

    def open(self) -> None:
        """Nothing to do: the connection opens with the first message."""

    def close(self) -> None:
        """Say QUIT and close the connection, if one is open."""
        self._conn.close()

    # -- sending -------------------------------------------------------------------

    def send_batch(
        self, message: CampaignMessage, recipients: Sequence[Recipient]
    ) -> list[DeliveryResult]:
        """Send each recipient's message in turn over the one connection.

        Raises :class:`TransportStopError` only while no recipient of this batch
        has an outcome (sent, refused or in doubt); after that, a server-wide
        refusal defers the rest instead.
        """
        self._batch = _BatchState()
        try:
            return super().send_batch(message, recipients)
        finally:
            self._batch = None

    def deliver(self, email: OutgoingEmail, recipient: Recipient) -> DeliveryResult:
        """Hand one message over, retrying temporary trouble; see the module docs."""
        batch = self._batch or _BatchState()
        if batch.deferred_reason is not None:
            # One full retry cycle already failed in this batch: waiting again
            # for every recipient would only stretch the run.
            return DeliveryResult(recipient, Outcome.DEFERRED, error=batch.deferred_reason)
        try:
            message = build_message(email)
            payload = message.as_bytes()
        except UnsafeHeaderError as refused:
            # Refused before anything was handed over: this recipient fails, the batch goes on.
            batch.has_outcomes = True
            return DeliveryResult(recipient, Outcome.FAILED, error=str(refused))
        message_id = str(message["Message-ID"])
        retries = 0
        while True:
            attempt = self._attempt(recipient.email, payload)
            if attempt.outcome is not None:
                batch.has_outcomes = True
                keep_id = attempt.outcome is not Outcome.FAILED
                return DeliveryResult(
                    recipient,
                    attempt.outcome,
                    message_id=message_id if keep_id else None,
                    error=attempt.error,
                    failure_kind=attempt.kind,
                    address_gone=attempt.address_gone,
                )
            error = attempt.error or "temporary failure"
            if attempt.stop:
                if not batch.has_outcomes:
                    raise TransportStopError(error)
                # Outcomes already known must reach the ledger: defer the rest.
                batch.deferred_reason = error
                return DeliveryResult(recipient, Outcome.DEFERRED, error=error)
            if attempt.free:
                logger.info("SMTP: connection to %s was closed; reconnecting", self.server)
                continue
            if retries >= self.settings.max_retries:
                if attempt.server_wide:
                    batch.deferred_reason = f"not tried: {error}"
                return DeliveryResult(recipient, Outcome.DEFERRED, error=error)
            delay = min(self._backoff * 2**retries, self._max_backoff)
            retries += 1
            logger.warning(
                "SMTP: %s; retry %d of %d in %.1f s",
                error,
                retries,
                self.settings.max_retries,
                delay,
            )
            if self.pause(delay):
                # Asked to stop while waiting (the wait ends at once): this one
                # was never handed over.
                return DeliveryResult(recipient, Outcome.DEFERRED, error="stopped")

    def _attempt(self, to: str, payload: bytes) -> Attempt:
        """One try: connect if needed, then ``sendmail``; classify what happened."""
        try:
            client = self._conn.client()
        except SmtpStop as exc:
            return Attempt(None, self._conn.redact(str(exc)), stop=True)
        except (smtplib.SMTPException, OSError) as exc:
            return Attempt(
                None,
                self._conn.redact(f"cannot connect to SMTP server {self.server}: {describe(exc)}"),
                server_wide=True,
            )
        reused = not self._conn.fresh
        self._conn.fresh = False
        client.content_sent = False
        options = ("SMTPUTF8",) if not to.isascii() and client.has_extn("smtputf8") else ()
        try:
            client.sendmail(self.from_email, [to], payload, mail_options=options)
        except smtplib.SMTPRecipientsRefused as exc:
            code, reply = exc.recipients.get(to, (-1, b"no reply"))
            return self._refused(client, code, reply, RECIPIENT_REFUSED, server_wide=code == 421)
        except smtplib.SMTPSenderRefused as exc:
            self._conn.reset(client)
            said = self._conn.reply(exc.smtp_code, exc.smtp_error)
            text = f"sender {self.from_email} refused: {said}"
            if 400 <= exc.smtp_code < 500:
                return Attempt(None, text, server_wide=True)
            # A refused sender address is refused for every recipient: stop
            # rather than mark the whole list failed.
            return Attempt(None, f"SMTP server {self.server}: {text}", stop=True)
        except smtplib.SMTPResponseException as exc:
            # SMTPDataError (the message), SMTPHeloError (the session)
            if client.content_sent and not 400 <= exc.smtp_code < 600:
                self._conn.drop()
                return Attempt(Outcome.UNCERTAIN, self._uncertain(f"reply {exc.smtp_code}"))
            return self._refused(
                client,
                exc.smtp_code,
                exc.smtp_error,
                "message refused",
                server_wide=exc.smtp_code == 421,
            )
        except smtplib.SMTPNotSupportedError as exc:
            self._conn.reset(client)
            return Attempt(
                Outcome.FAILED, f"cannot send to this address: {exc}", kind=FailureKind.RECIPIENT
            )
        except UnicodeEncodeError:
            self._conn.reset(client)
            return Attempt(
                Outcome.FAILED,
                f"SMTP server {self.server} does not offer SMTPUTF8, needed for a "
                "non-ASCII address",
                kind=FailureKind.RECIPIENT,
            )
        except (smtplib.SMTPException, OSError) as exc:
            # SMTPServerDisconnected, a timeout, a reset: the connection is gone
            # or in an unknown state either way.
            sent = client.content_sent
            self._conn.drop()
            if sent:
                return Attempt(Outcome.UNCERTAIN, self._uncertain(describe(exc)))
            lost = f"connection to SMTP server {self.server} lost: {describe(exc)}"
            text = self._conn.redact(lost)
            return Attempt(None, text, server_wide=True, free=reused)
        return Attempt(Outcome.SENT)

    def _refused(
        self, client: SmtpClient, code: int, reply: bytes | str, what: str, *, server_wide: bool
    ) -> Attempt:
        """A reply refusing this message: 4xx may be retried, 5xx fails it."""
        self._conn.reset(client)
        text = f"{what}: {self._conn.reply(code, reply)}"
        if 500 <= code < 600:
            if what != RECIPIENT_REFUSED:
                return Attempt(Outcome.FAILED, text, kind=FailureKind.MESSAGE)
            gone = mailbox_does_not_exist(code, reply)
            return Attempt(Outcome.FAILED, text, kind=FailureKind.RECIPIENT, address_gone=gone)
        return Attempt(None, text, server_wide=server_wide)

    def _uncertain(self, detail: str) -> str:
        return self._conn.redact(
            f"connection to SMTP server {self.server} lost after the message was sent, "
            f"before the server confirmed it ({detail}); not resent"
        )
