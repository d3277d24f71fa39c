"""One SMTP connection, reused across messages: connect, secure, log in, reset, close.

The transport (:mod:`pipeline.sending.transports.smtp`) decides what each
reply means for the ledger; this module only keeps the connection usable and
tells "retrying cannot help" (:class:`SmtpStop`: no STARTTLS, a refused
login, an unverifiable certificate) from a drop worth retrying. It also holds
the password, so it is what removes it (and its AUTH encodings) from text.
"""

from __future__ import annotations

import base64
import logging
import smtplib
import ssl
from typing import TYPE_CHECKING

from pipeline.sending.transports.smtp_settings import SmtpSettings

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

#: The transport's logger, so these lines keep the name they always had.
logger = logging.getLogger("pipeline.sending.transports.smtp")


class SmtpClient(smtplib.SMTP):
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


class TlsSmtpClient(SmtpClient, smtplib.SMTP_SSL):
    """Implicit TLS (SMTPS, usually port 465) with the same bookkeeping."""


class SmtpStop(Exception):
    """Raised while connecting when retrying cannot help (message is secret-free)."""


class SmtpConnection:
    """The one connection a transport sends over; opened on demand, reopened when dropped."""

    def __init__(
        self,
        settings: SmtpSettings,
        *,
        password: str,
        ssl_context: ssl.SSLContext | None,
        local_hostname: str | None,
    ) -> None:
        self.settings = settings
        self._password = password
        self._ssl_context = ssl_context
        self._local_hostname = local_hostname
        self._client: SmtpClient | None = None
        # True until the connection has carried one exchange: a drop on a
        # connection that just worked says nothing about a reused one.
        self.fresh = False

    @property
    def server(self) -> str:
        """``host:port``, for messages."""
        return f"{self.settings.host}:{self.settings.port}"

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

    def drop(self) -> None:
        """Forget a connection that is broken or in an unknown state."""
        client, self._client = self._client, None
        if client is not None:
            client.close()

    def client(self) -> SmtpClient:
        """The open connection, connecting (and logging in) if there is none."""
        if self._client is not None and self._client.sock is None:
            self._client = None  # smtplib closed it (a 421, a failed send)
        if self._client is None:
            self._client = self._connect()
            self.fresh = True
        return self._client

    def _connect(self) -> SmtpClient:
        """Connect, secure and log in; :class:`SmtpStop` when retrying cannot help."""
        settings = self.settings
        client: SmtpClient
        if settings.security == "tls":
            client = TlsSmtpClient(
                local_hostname=self._local_hostname,
                timeout=settings.timeout,
                context=self._ssl_context,
            )
        else:
            client = SmtpClient(local_hostname=self._local_hostname, timeout=settings.timeout)
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
                    raise SmtpStop(
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
            raise SmtpStop(
                f"cannot verify the TLS certificate of SMTP server {self.server}: "
                f"{exc.verify_message}"
            ) from None
        except ssl.SSLError as exc:
            client.close()
            # A handshake that fails here fails every time: usually the wrong
            # security for the port (465 is "tls", 587 is "starttls").
            raise SmtpStop(
                f"TLS with SMTP server {self.server} failed "
                f'(smtp.security = "{settings.security}"): {exc.reason or exc}'
            ) from None
        except BaseException:
            client.close()
            raise
        return client

    def _login(self, client: SmtpClient, username: str) -> None:
        if self.settings.security == "none":
            logger.warning(
                "SMTP: logging in to %s without TLS: the password crosses the network "
                "in clear text",
                self.server,
            )
        try:
            client.login(username, self._password)
        except smtplib.SMTPNotSupportedError:
            raise SmtpStop(
                f"SMTP server {self.server} does not offer AUTH, but smtp.username is set"
            ) from None
        except smtplib.SMTPResponseException as exc:  # SMTPAuthenticationError included
            if 400 <= exc.smtp_code < 500:
                raise  # "454 temporary authentication failure": retried like a drop
            raise SmtpStop(
                f"SMTP server {self.server} refused the login for user {username!r}: "
                f"{self.reply(exc.smtp_code, exc.smtp_error)}"
            ) from None
        except smtplib.SMTPServerDisconnected:
            raise
        except smtplib.SMTPException as exc:
            # "No suitable authentication method found."
            raise SmtpStop(f"cannot log in to SMTP server {self.server}: {exc}") from None

    def reset(self, client: SmtpClient) -> None:
        """Leave the connection ready for the next MAIL FROM, or drop it."""
        if client.sock is None:
            self.drop()
            return
        try:
            client.rset()
        except (smtplib.SMTPException, OSError):
            self.drop()

    def reply(self, code: int, reply: bytes | str) -> str:
        """The server's reply as one line of text, e.g. ``550 5.1.1 unknown user``."""
        text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
        return self.redact(f"{code} {' '.join(text.split())}")

    def redact(self, text: str) -> str:
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
