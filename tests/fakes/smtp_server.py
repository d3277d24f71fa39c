"""A real SMTP server on 127.0.0.1 for tests: aiosmtpd in a thread, recording every message.

Use it as a context manager::

    with SmtpTestServer() as server:                 # plain SMTP on a free port
        ... send to 127.0.0.1:server.port ...
        server.messages        # every accepted message, in order
        server.connections     # how many connections were opened

Behaviours a test can ask for (before or while sending):

* ``server.refuse("a@x", code=550)``: refuse that recipient for good;
  ``server.refuse("a@x", code=451, times=2)``: temporarily, the first 2 tries.
* ``SmtpTestServer(auth=("user", "pw"))``: require AUTH (PLAIN/LOGIN) before MAIL.
* ``SmtpTestServer(security="starttls")``: offer STARTTLS and require it before
  anything else (AUTH only after it); ``security="tls"``: implicit TLS (SMTPS).
  Both use a self-signed certificate for 127.0.0.1/localhost made at test time;
  ``server.client_context()`` is an ``ssl.SSLContext`` trusting it.
* ``server.drop_after(n)``: the n-th accepted message gets its 250, then the
  server drops the connection when the client sends its next command (as an
  idle timeout or a per-connection message limit would).
* ``server.drop_before_reply(n)``: the n-th message is received and kept, then
  the connection is dropped before the final reply (the client cannot know).
* ``server.hold_data(gate, timeout=60)``: every DATA waits, before it is
  recorded or answered, until the test sets ``gate`` (a ``threading.Event``),
  so no message can count as sent before the test says so, on every
  connection at once. The wait runs off the event loop and is bounded: one that
  times out is counted in ``server.gate_timeouts`` and then goes on as usual,
  so a test that forgot to open the gate fails instead of hanging.
"""

from __future__ import annotations

import asyncio
import ssl
import threading
from types import TracebackType
from typing import Any, Literal, Self

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP

from tests.fakes.smtp_handler import ReceivedMessage, RecordingHandler
from tests.fakes.tls_certificate import HOST, SelfSignedCertificate, make_certificate

# The handler (smtp_handler.py) and the certificate (tls_certificate.py) have their own
# modules; everything this module used to define is still importable from here.
__all__ = [
    "HOST",
    "ReceivedMessage",
    "RecordingHandler",
    "Security",
    "SelfSignedCertificate",
    "SmtpTestServer",
    "make_certificate",
]


# -- the controller ------------------------------------------------------------------


class _Controller(Controller):
    """aiosmtpd's threaded controller, on a free port, counting connections."""

    handler: RecordingHandler

    def factory(self) -> SMTP:
        server: SMTP = super().factory()  # type: ignore[no-untyped-call]
        self.handler.connection_opened(server)
        return server

    def _trigger_server(self) -> None:
        # Bound to port 0: learn the real port before the start-up probe uses it.
        assert isinstance(self.server, asyncio.Server)
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()  # type: ignore[no-untyped-call]


Security = Literal["none", "starttls", "tls"]


class SmtpTestServer:
    """A real SMTP server on 127.0.0.1 (see the module docs)."""

    def __init__(
        self,
        *,
        security: Security = "none",
        auth: tuple[str, str] | None = None,
    ) -> None:
        self.host = HOST
        self.security = security
        self.handler = RecordingHandler(auth)
        self.certificate = make_certificate() if security != "none" else None
        kwargs: dict[str, Any] = {
            "hostname": HOST,
            "port": 0,
            "server_hostname": "localhost",  # no DNS lookup of our own name
            "ready_timeout": 5.0,
        }
        if auth is not None:
            kwargs["authenticator"] = self.handler.authenticate
            # handle_MAIL enforces AUTH itself; auth_require_tls keeps AUTH
            # hidden until STARTTLS when the server offers it.
            kwargs["auth_require_tls"] = security == "starttls"
        if self.certificate is not None and security == "starttls":
            kwargs["tls_context"] = self.certificate.server_context()
            kwargs["require_starttls"] = True
        elif self.certificate is not None and security == "tls":
            kwargs["ssl_context"] = self.certificate.server_context()
        self._controller = _Controller(self.handler, **kwargs)
        self.port = 0

    def __enter__(self) -> Self:
        self._controller.start()
        self.port = self._controller.port
        self.handler.reset_counts()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._controller.stop()

    def client_context(self) -> ssl.SSLContext:
        """An SSL context trusting this server's certificate."""
        assert self.certificate is not None, "plain server: no certificate"
        return self.certificate.client_context()

    # Convenience pass-throughs, so tests read naturally.

    @property
    def messages(self) -> list[ReceivedMessage]:
        """Every accepted message, in arrival order."""
        return self.handler.messages

    @property
    def recipients(self) -> list[str]:
        """Every accepted envelope recipient, in arrival order (duplicates kept)."""
        return [rcpt for message in self.messages for rcpt in message.rcpt_tos]

    @property
    def connections(self) -> int:
        """Connections opened by clients since the server started."""
        return self.handler.connections

    def refuse(
        self, address: str, code: int = 550, times: int | None = None, text: str | None = None
    ) -> None:
        """See :meth:`RecordingHandler.refuse`."""
        self.handler.refuse(address, code, times, text)

    def drop_after(self, number: int) -> None:
        """See :meth:`RecordingHandler.drop_after`."""
        self.handler.drop_after(number)

    def drop_before_reply(self, number: int) -> None:
        """See :meth:`RecordingHandler.drop_before_reply`."""
        self.handler.drop_before_reply(number)

    def hold_data(self, gate: threading.Event, timeout: float = 60.0) -> None:
        """See :meth:`RecordingHandler.hold_data`."""
        self.handler.hold_data(gate, timeout)

    @property
    def gate_timeouts(self) -> int:
        """DATA commands that waited ``timeout`` for the gate and went on without it."""
        return self.handler.gate_timeouts

    @property
    def gate_waits(self) -> int:
        """DATA commands that found the gate closed (proof a hold really held something)."""
        return self.handler.gate_waits
