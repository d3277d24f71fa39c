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
  :class:`~pipeline.sending.transports.base.TransportStopError` (or, once part of the
  batch was handed over, ``DEFERRED`` for the rest of the batch).

The password never reaches a log line, an error or an exception message.
A transport instance is not thread-safe: use one per sending thread.
"""

from __future__ import annotations

import base64
import logging
import re
import smtplib
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Self

from pydantic import SecretStr

from pipeline.config import SmtpSettings
from pipeline.errors import ConfigError, UnsafeHeaderError
from pipeline.render.message import OutgoingEmail, build_message
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

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

    from pipeline.sending.transports import TransportEnv

logger = logging.getLogger(__name__)

#: First retry delay in seconds; each further retry waits twice as long.
DEFAULT_BACKOFF = 1.0
#: Cap on one retry delay, so a large ``max_retries`` cannot park a send for hours.
DEFAULT_MAX_BACKOFF = 60.0


class _Client(smtplib.SMTP):
    """``smtplib.SMTP`` that records whether the message content was written out.

    That single bit separates "certainly not delivered, safe to resend" from
    "the server may have it" when the connection breaks during ``sendmail``.
    """

    content_sent = False
    _in_data = False
    _host: str  # set by smtplib's constructor; typeshed does not declare it

    def data(self, msg: ReadableBuffer | str) -> tuple[int, bytes]:
        self._in_data = True
        try:
            return super().data(msg)
        finally:
            self._in_data = False

    def send(self, s: ReadableBuffer | str) -> None:
        super().send(s)
        # Inside DATA, commands are str and the content is the one bytes write;
        # only once sendall() returned did the server get the terminating dot.
        if self._in_data and not isinstance(s, str):
            self.content_sent = True


class _TlsClient(_Client, smtplib.SMTP_SSL):
    """Implicit TLS (SMTPS, usually port 465) with the same bookkeeping."""


@dataclass(frozen=True)
class _Attempt:
    """What one try at handing a message over came to."""

    #: SENT, FAILED or UNCERTAIN end the message; None means it may be retried.
    outcome: Outcome | None
    error: str | None = None
    #: The server refuses everything: stop (or defer the rest of the batch).
    stop: bool = False
    #: The trouble is the server or connection, not this recipient: once retries
    #: are used up, the rest of the batch defers without waiting again.
    server_wide: bool = False
    #: A reused connection turned out dead: reconnect at once, no retry counted.
    free: bool = False
    #: Why a FAILED outcome failed, and whether the mailbox does not exist.
    kind: FailureKind | None = None
    address_gone: bool = False


class _Stop(Exception):
    """Raised while connecting when retrying cannot help (message is secret-free)."""


class _BatchState:
    """What the transport remembers within one batch (mutable on purpose)."""

    def __init__(self) -> None:
        self.handed_over = False
        self.deferred_reason: str | None = None


class SmtpTransport(PerMessageTransport):
    """Hand each recipient's MIME message to an SMTP server with ``sendmail``."""

    name = "smtp"

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
        self._password = password.get_secret_value() if password else ""
        self._sleep = sleep
        self._ssl_context = (
            ssl_context
            if ssl_context is not None or settings.security == "none"
            else ssl.create_default_context()
        )
        self._local_hostname = local_hostname
        self._backoff = backoff
        self._max_backoff = max_backoff
        self._client: _Client | None = None
        # True until the connection has carried one exchange: a drop on a
        # connection that just worked says nothing about a reused one.
        self._fresh = False
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
        return f"{self.settings.host}:{self.settings.port}"

    # -- connection ----------------------------------------------------------------

    def open(self) -> None:
        """Nothing to do: the connection opens with the first message."""

    def close(self) -> None:
        """Say QUIT and close the connection, if one is open."""
        client, self._client = self._client, None
        if client is None:
            return
        try:
            client.quit()
        except (smtplib.SMTPException, OSError):
            # Already gone or unhappy: closing the socket is all that is left.
            client.close()

    def _drop(self) -> None:
        """Forget a connection that is broken or in an unknown state."""
        client, self._client = self._client, None
        if client is not None:
            client.close()

    def _connection(self) -> _Client:
        """The open connection, connecting (and logging in) if there is none."""
        if self._client is not None and self._client.sock is None:
            self._client = None  # smtplib closed it (a 421, a failed send)
        if self._client is None:
            self._client = self._connect()
            self._fresh = True
        return self._client

    def _connect(self) -> _Client:
        """Connect, secure and log in; :class:`_Stop` when retrying cannot help."""
        settings = self.settings
        client: _Client
        if settings.security == "tls":
            client = _TlsClient(
                local_hostname=self._local_hostname,
                timeout=settings.timeout,
                context=self._ssl_context,
            )
        else:
            client = _Client(local_hostname=self._local_hostname, timeout=settings.timeout)
        # connect() does not record the host; TLS takes it from here for SNI and
        # the certificate check (the constructor would set it, but also connect
        # outside this try, leaking the socket on a failure).
        client._host = settings.host
        try:
            code, reply = client.connect(settings.host, settings.port)
            if code != 220:
                raise smtplib.SMTPConnectError(code, reply)
            client.ehlo_or_helo_if_needed()
            if settings.security == "starttls":
                if not client.has_extn("starttls"):
                    raise _Stop(
                        f"SMTP server {self.server} does not offer STARTTLS, and "
                        'smtp.security = "starttls" forbids sending in plain text '
                        '(use "tls" for implicit TLS, usually port 465)'
                    )
                client.starttls(context=self._ssl_context)
                client.ehlo()  # the capabilities may differ once encrypted
            if settings.username:
                self._login(client, settings.username)
        except ssl.SSLCertVerificationError as exc:
            client.close()
            raise _Stop(
                f"cannot verify the TLS certificate of SMTP server {self.server}: "
                f"{exc.verify_message}"
            ) from None
        except ssl.SSLError as exc:
            client.close()
            # A handshake that fails here fails every time: usually the wrong
            # security for the port (465 is "tls", 587 is "starttls").
            raise _Stop(
                f"TLS with SMTP server {self.server} failed "
                f'(smtp.security = "{settings.security}"): {exc.reason or exc}'
            ) from None
        except BaseException:
            client.close()
            raise
        return client

    def _login(self, client: _Client, username: str) -> None:
        if self.settings.security == "none":
            logger.warning(
                "SMTP: logging in to %s without TLS: the password crosses the network "
                "in clear text",
                self.server,
            )
        try:
            client.login(username, self._password)
        except smtplib.SMTPNotSupportedError:
            raise _Stop(
                f"SMTP server {self.server} does not offer AUTH, but smtp.username is set"
            ) from None
        except smtplib.SMTPResponseException as exc:  # SMTPAuthenticationError included
            if 400 <= exc.smtp_code < 500:
                raise  # "454 temporary authentication failure": retried like a drop
            raise _Stop(
                f"SMTP server {self.server} refused the login for user {username!r}: "
                f"{self._reply(exc.smtp_code, exc.smtp_error)}"
            ) from None
        except smtplib.SMTPServerDisconnected:
            raise
        except smtplib.SMTPException as exc:
            # "No suitable authentication method found."
            raise _Stop(f"cannot log in to SMTP server {self.server}: {exc}") from None

    # -- sending -------------------------------------------------------------------

    def send_batch(
        self, message: CampaignMessage, recipients: Sequence[Recipient]
    ) -> list[DeliveryResult]:
        """Send each recipient's message in turn over the one connection.

        Raises :class:`TransportStopError` only while nothing of this batch was
        handed over; after that, a server-wide refusal defers the rest instead.
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
            return DeliveryResult(recipient, Outcome.FAILED, error=str(refused))
        message_id = str(message["Message-ID"])
        retries = 0
        while True:
            attempt = self._attempt(recipient.email, payload)
            if attempt.outcome is not None:
                if attempt.outcome in (Outcome.SENT, Outcome.UNCERTAIN):
                    batch.handed_over = True
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
                if not batch.handed_over:
                    raise TransportStopError(error)
                # Results already handed over must reach the ledger: defer the rest.
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

    def _attempt(self, to: str, payload: bytes) -> _Attempt:
        """One try: connect if needed, then ``sendmail``; classify what happened."""
        try:
            client = self._connection()
        except _Stop as exc:
            return _Attempt(None, self._redact(str(exc)), stop=True)
        except (smtplib.SMTPException, OSError) as exc:
            return _Attempt(
                None,
                self._redact(f"cannot connect to SMTP server {self.server}: {_describe(exc)}"),
                server_wide=True,
            )
        reused = not self._fresh
        self._fresh = False
        client.content_sent = False
        options = ("SMTPUTF8",) if not to.isascii() and client.has_extn("smtputf8") else ()
        try:
            client.sendmail(self.from_email, [to], payload, mail_options=options)
        except smtplib.SMTPRecipientsRefused as exc:
            code, reply = exc.recipients.get(to, (-1, b"no reply"))
            return self._refused(client, code, reply, RECIPIENT_REFUSED, server_wide=code == 421)
        except smtplib.SMTPSenderRefused as exc:
            self._reset(client)
            text = f"sender {self.from_email} refused: {self._reply(exc.smtp_code, exc.smtp_error)}"
            if 400 <= exc.smtp_code < 500:
                return _Attempt(None, text, server_wide=True)
            # A refused sender address is refused for every recipient: stop
            # rather than mark the whole list failed.
            return _Attempt(None, f"SMTP server {self.server}: {text}", stop=True)
        except smtplib.SMTPResponseException as exc:
            # SMTPDataError (the message), SMTPHeloError (the session)
            if client.content_sent and not 400 <= exc.smtp_code < 600:
                self._drop()
                return _Attempt(Outcome.UNCERTAIN, self._uncertain(f"reply {exc.smtp_code}"))
            return self._refused(
                client,
                exc.smtp_code,
                exc.smtp_error,
                "message refused",
                server_wide=exc.smtp_code == 421,
            )
        except smtplib.SMTPNotSupportedError as exc:
            self._reset(client)
            return _Attempt(
                Outcome.FAILED, f"cannot send to this address: {exc}", kind=FailureKind.RECIPIENT
            )
        except UnicodeEncodeError:
            self._reset(client)
            return _Attempt(
                Outcome.FAILED,
                f"SMTP server {self.server} does not offer SMTPUTF8, needed for a "
                "non-ASCII address",
                kind=FailureKind.RECIPIENT,
            )
        except (smtplib.SMTPException, OSError) as exc:
            # SMTPServerDisconnected, a timeout, a reset: the connection is gone
            # or in an unknown state either way.
            sent = client.content_sent
            self._drop()
            if sent:
                return _Attempt(Outcome.UNCERTAIN, self._uncertain(_describe(exc)))
            text = self._redact(f"connection to SMTP server {self.server} lost: {_describe(exc)}")
            return _Attempt(None, text, server_wide=True, free=reused)
        return _Attempt(Outcome.SENT)

    def _refused(
        self, client: _Client, code: int, reply: bytes | str, what: str, *, server_wide: bool
    ) -> _Attempt:
        """A reply refusing this message: 4xx may be retried, 5xx fails it."""
        self._reset(client)
        text = f"{what}: {self._reply(code, reply)}"
        if 500 <= code < 600:
            if what != RECIPIENT_REFUSED:
                return _Attempt(Outcome.FAILED, text, kind=FailureKind.MESSAGE)
            gone = mailbox_does_not_exist(code, reply)
            return _Attempt(Outcome.FAILED, text, kind=FailureKind.RECIPIENT, address_gone=gone)
        return _Attempt(None, text, server_wide=server_wide)

    def _reset(self, client: _Client) -> None:
        """Leave the connection ready for the next MAIL FROM, or drop it."""
        if client.sock is None:
            self._drop()
            return
        try:
            client.rset()
        except (smtplib.SMTPException, OSError):
            self._drop()

    def _uncertain(self, detail: str) -> str:
        return self._redact(
            f"connection to SMTP server {self.server} lost after the message was sent, "
            f"before the server confirmed it ({detail}); not resent"
        )

    def _reply(self, code: int, reply: bytes | str) -> str:
        """The server's reply as one line of text, e.g. ``550 5.1.1 unknown user``."""
        text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
        return self._redact(f"{code} {' '.join(text.split())}")

    def _redact(self, text: str) -> str:
        """Remove the password (and its AUTH encodings) from text bound for a message."""
        if not self._password:
            return text
        username = self.settings.username or ""
        forms = {
            self._password,
            base64.b64encode(self._password.encode()).decode(),
            base64.b64encode(f"\0{username}\0{self._password}".encode()).decode(),
        }
        for form in sorted(forms, key=len, reverse=True):
            text = text.replace(form, "***")
        return text


RECIPIENT_REFUSED = "recipient refused"
#: RFC 3463 statuses for "no such mailbox": bad destination mailbox (5.1.1), no
#: mail accepted by the domain (5.1.10, RFC 7505 null MX) and mailbox disabled (5.2.1).
_GONE_STATUS = re.compile(r"^\s*5\.(?:1\.1|1\.10|2\.1)(?![.\d])")
#: What a plain 550 says when it means the same without an enhanced status.
_GONE_WORDS = ("user unknown", "unknown user", "no such user", "no such mailbox")


def mailbox_does_not_exist(code: int, reply: bytes | str) -> bool:
    """Whether an RCPT refusal says the mailbox does not exist (a hard bounce).

    Only then does the subscriber become ``bounced``; any other 5xx (a policy
    block, a full mailbox) fails the row but leaves the person on the list.
    """
    if not 500 <= code < 600:
        return False
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
    if _GONE_STATUS.match(text):
        return True
    return code == 550 and any(words in text.lower() for words in _GONE_WORDS)


def _describe(exc: BaseException) -> str:
    """A short description of a connection-level error."""
    if isinstance(exc, TimeoutError):
        return "timed out"
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
