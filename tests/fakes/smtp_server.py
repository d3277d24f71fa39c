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
import datetime as dt
import email
import email.policy
import functools
import ipaddress
import ssl
import tempfile
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

HOST = "127.0.0.1"


# -- a throwaway certificate ------------------------------------------------------------


@dataclass(frozen=True)
class SelfSignedCertificate:
    """A self-signed certificate for 127.0.0.1 and localhost, as PEM."""

    cert_pem: bytes
    key_pem: bytes

    def server_context(self) -> ssl.SSLContext:
        """A server-side context presenting this certificate."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        # load_cert_chain only reads files.
        with tempfile.TemporaryDirectory() as folder:
            cert, key = Path(folder, "cert.pem"), Path(folder, "key.pem")
            cert.write_bytes(self.cert_pem)
            key.write_bytes(self.key_pem)
            context.load_cert_chain(cert, key)
        return context

    def client_context(self) -> ssl.SSLContext:
        """A client context that trusts this certificate (and checks the hostname)."""
        return ssl.create_default_context(cadata=self.cert_pem.decode("ascii"))


@functools.cache
def make_certificate() -> SelfSignedCertificate:
    """One certificate per test session (an EC key: fast to make)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(HOST))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return SelfSignedCertificate(
        cert_pem=cert.public_bytes(serialization.Encoding.PEM),
        key_pem=key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )


# -- recording handler --------------------------------------------------------------


@dataclass(frozen=True)
class ReceivedMessage:
    """One message as the server received it."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    #: 1-based number of the connection that carried it.
    connection: int

    def parsed(self) -> EmailMessage:
        """The message parsed with the modern email API."""
        message = email.message_from_bytes(self.data, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        return message


@dataclass(frozen=True)
class _Refusal:
    code: int
    reply: str
    #: Refuse only the first N tries; None: always.
    times: int | None


class RecordingHandler:
    """aiosmtpd handler: records messages, refuses and drops on request.

    Hooks run on the server's event-loop thread; every shared field is guarded
    by one lock, and readers get snapshots.
    """

    def __init__(self, auth: tuple[str, str] | None = None) -> None:
        self._lock = threading.Lock()
        #: The one (user, password) AUTH accepts; a test may change it mid-run.
        self.auth = auth
        self._messages: list[ReceivedMessage] = []
        self._refusals: dict[str, _Refusal] = {}
        self._rcpt_attempts: Counter[str] = Counter()
        self._data_count = 0
        self._drop_after: set[int] = set()
        self._drop_before_reply: set[int] = set()
        self._doomed: set[int] = set()  # connection numbers to drop at their next command
        self._connection_ids: dict[int, int] = {}  # id(SMTP instance) -> connection number
        self._servers: list[SMTP] = []  # keeps ids unique while the server runs
        self.connections = 0
        self.auth_attempts: list[tuple[str, bool]] = []
        #: Called (on the server thread) with each accepted message's number.
        self.on_message: Callable[[int], None] | None = None
        self._gate: threading.Event | None = None
        self._gate_timeout = 0.0
        #: DATA commands that found the gate closed, and those that gave up waiting.
        self.gate_waits = 0
        self.gate_timeouts = 0

    # -- configuration (test thread) --

    def refuse(
        self, address: str, code: int = 550, times: int | None = None, text: str | None = None
    ) -> None:
        """Refuse RCPT TO ``address`` with ``code`` (always, or the first ``times`` tries).

        ``text`` replaces the default reply text after the code (a 5xx says
        "5.1.1 <address>: Recipient address rejected: User unknown").
        """
        kind = "Recipient address rejected: " + (
            "Greylisted, try again later" if 400 <= code < 500 else "User unknown"
        )
        status = "4.7.1" if 400 <= code < 500 else "5.1.1"
        reply = f"{code} {text}" if text is not None else f"{code} {status} <{address}>: {kind}"
        with self._lock:
            self._refusals[address.lower()] = _Refusal(code, reply, times)

    def drop_after(self, number: int) -> None:
        """Drop the connection at the next command after the ``number``-th message."""
        with self._lock:
            self._drop_after.add(number)

    def drop_before_reply(self, number: int) -> None:
        """Keep the ``number``-th message but drop the connection before replying."""
        with self._lock:
            self._drop_before_reply.add(number)

    def hold_data(self, gate: threading.Event, timeout: float) -> None:
        """Make every DATA wait until ``gate`` is set (at most ``timeout`` seconds each)."""
        with self._lock:
            self._gate = gate
            self._gate_timeout = timeout

    # -- what happened (test thread) --

    @property
    def messages(self) -> list[ReceivedMessage]:
        """Every accepted message, in arrival order."""
        with self._lock:
            return list(self._messages)

    def rcpt_attempts(self, address: str) -> int:
        """How many times RCPT TO ``address`` was tried."""
        with self._lock:
            return self._rcpt_attempts[address.lower()]

    # -- server side (event-loop thread) --

    def connection_opened(self, server: SMTP) -> None:
        """Called by the controller for each new connection."""
        with self._lock:
            self.connections += 1
            self._servers.append(server)
            self._connection_ids[id(server)] = self.connections

    def reset_counts(self) -> None:
        """Forget the controller's own start-up probe connection."""
        with self._lock:
            self.connections = 0
            self._servers.clear()
            self._connection_ids.clear()

    def _connection(self, server: SMTP) -> int:
        return self._connection_ids.get(id(server), 0)

    async def _maybe_drop(self, server: SMTP) -> None:
        with self._lock:
            doomed = self._connection(server) in self._doomed
        if doomed:
            await _hang_up(server)

    async def handle_MAIL(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        await self._maybe_drop(server)
        if self.auth is not None and not session.authenticated:
            return "530 5.7.0 Authentication required"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        key = address.lower()
        with self._lock:
            self._rcpt_attempts[key] += 1
            refusal = self._refusals.get(key)
            refused = refusal is not None and (
                refusal.times is None or self._rcpt_attempts[key] <= refusal.times
            )
        if refused:
            assert refusal is not None
            return refusal.reply
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        await self._wait_for_gate()
        with self._lock:
            self._data_count += 1
            number = self._data_count
            connection = self._connection(server)
            content = envelope.original_content or b""
            self._messages.append(
                ReceivedMessage(
                    mail_from=envelope.mail_from or "",
                    rcpt_tos=tuple(envelope.rcpt_tos),
                    data=bytes(content),
                    connection=connection,
                )
            )
            if number in self._drop_after:
                self._doomed.add(connection)
            hang_up = number in self._drop_before_reply
        if self.on_message is not None:
            self.on_message(number)
        if hang_up:
            await _hang_up(server)
        return "250 2.0.0 OK: queued"

    async def _wait_for_gate(self) -> None:
        with self._lock:
            gate, timeout = self._gate, self._gate_timeout
            if gate is None or gate.is_set():
                return
            self.gate_waits += 1
        # In a worker thread: the event loop keeps serving the other connections,
        # which then reach their own DATA and wait here too.
        if not await asyncio.to_thread(gate.wait, timeout):
            with self._lock:
                self.gate_timeouts += 1

    async def handle_QUIT(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        return "221 Bye"

    def authenticate(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        mechanism: str,
        auth_data: Any,
    ) -> AuthResult:
        """aiosmtpd authenticator: the one configured user and password."""
        ok = False
        login = ""
        if isinstance(auth_data, LoginPassword) and self.auth is not None:
            login = auth_data.login.decode("utf-8", "replace")
            password = auth_data.password.decode("utf-8", "replace")
            ok = (login, password) == self.auth
        with self._lock:
            self.auth_attempts.append((login, ok))
        # handled=False: let aiosmtpd send the 535 itself.
        return AuthResult(success=ok, handled=False, auth_data=auth_data)


async def _hang_up(server: SMTP) -> None:
    """Drop the connection without a reply, then wait to be cancelled.

    ``abort()`` discards anything not yet written, so no reply can slip out;
    aiosmtpd cancels this handler when it notices the connection is gone.
    """
    assert isinstance(server.transport, asyncio.Transport)
    server.transport.abort()
    await asyncio.get_running_loop().create_future()


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
