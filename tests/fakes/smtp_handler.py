"""The aiosmtpd handler behind ``SmtpTestServer`` (tests/fakes/smtp_server.py).

It records every accepted message and, on a test's request, refuses recipients,
drops connections and holds DATA; the behaviours are described in smtp_server.py.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

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
    #: Then drop the connection at its next command.
    hang_up: bool = False


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
        self,
        address: str,
        code: int = 550,
        times: int | None = None,
        text: str | None = None,
        hang_up: bool = False,
    ) -> None:
        """Refuse RCPT TO ``address`` with ``code`` (always, or the first ``times`` tries).

        ``text`` replaces the default reply text after the code (a 5xx says
        "5.1.1 <address>: Recipient address rejected: User unknown").
        ``hang_up``: then drop the connection at its next command.
        """
        kind = "Recipient address rejected: " + (
            "Greylisted, try again later" if 400 <= code < 500 else "User unknown"
        )
        status = "4.7.1" if 400 <= code < 500 else "5.1.1"
        reply = f"{code} {text}" if text is not None else f"{code} {status} <{address}>: {kind}"
        with self._lock:
            self._refusals[address.lower()] = _Refusal(code, reply, times, hang_up)

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
            if refusal.hang_up:
                with self._lock:
                    self._doomed.add(self._connection(server))
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
