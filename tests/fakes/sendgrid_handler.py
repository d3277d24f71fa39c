"""How the fake SendGrid (sendgrid_server.py) answers each ``POST /v3/mail/send``.

:class:`MailSendHandler` is the HTTP side: the path, the Content-Type, writing
the answer. :class:`ScriptedMailSend`, the base of ``SendGridServer``, holds the
settings, the script and the records, and decides each answer: the next
scripted behaviour (sendgrid_faults.py), else a normal answer after validation
(sendgrid_validation.py).
"""

from __future__ import annotations

import dataclasses
import json
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final

from tests.fakes.sendgrid_faults import Behaviour, Drop, Hang, Reply
from tests.fakes.sendgrid_records import ReceivedRequest
from tests.fakes.sendgrid_validation import api_error, schema_validator, validate_request_bytes

#: The key the server accepts unless told another.
TEST_API_KEY: Final = "SG.test-key"

# -- HTTP ------------------------------------------------------------------------------


class MailSendHTTPServer(ThreadingHTTPServer):
    """One thread per connection; ``owner`` decides the answers."""

    daemon_threads = True
    owner: ScriptedMailSend


class MailSendHandler(BaseHTTPRequestHandler):
    """Routes ``POST /v3/mail/send`` to the owner and writes whatever it answers."""

    server: MailSendHTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: test output stays readable."""

    def do_POST(self) -> None:
        """Mail Send; anything else is 404."""
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        if self.path.split("?", 1)[0] != "/v3/mail/send":
            self.answer(404, json.dumps({"errors": [api_error("not found", None)]}).encode())
            return
        media_type = (self.headers.get("Content-Type") or "").split(";", 1)[0].strip()
        if media_type.lower() != "application/json":
            # What SendGrid answers; a charset parameter is fine.
            message = "Content-Type should be application/json."
            self.answer(415, json.dumps({"errors": [api_error(message, None)]}).encode())
            return
        self.server.owner._handle(self, raw)

    def answer(
        self, status: int, body: bytes = b"", headers: tuple[tuple[str, str], ...] = ()
    ) -> None:
        """Write one whole response; a client that already left is not an error."""
        try:
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            if body and not any(n.lower() == "content-type" for n, _ in headers):
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            pass


@dataclass
class _State:
    queue: deque[Behaviour | None] = field(default_factory=deque)
    sticky: Behaviour | None = None
    requests: list[ReceivedRequest] = field(default_factory=list)
    hung: list[threading.Event] = field(default_factory=list)
    delivered: int = 0


class ScriptedMailSend:
    """The request side of ``SendGridServer``: settings, script, records, and each answer."""

    def __init__(
        self,
        api_key: str = TEST_API_KEY,
        *,
        hang_timeout: float = 10.0,
        validate: bool = True,
        keep_bodies: bool = True,
        latency: float = 0.0,
    ) -> None:
        schema_validator()  # fail now, clearly, if the schema is missing
        self.api_key = api_key
        #: Off only for benchmarks: bodies are parsed as SendGrid would, then
        #: dropped, so a long run does not grow the heap it is measured with.
        self.keep_bodies = keep_bodies
        #: Off only for benchmarks, where the schema check would be what is measured.
        self.validate = validate
        #: A hung request is closed after this long even if never released.
        self.hang_timeout = hang_timeout
        #: Seconds every normal answer waits (benchmarks: a real API's round trip).
        self.latency = latency
        self._lock = threading.Condition()
        self._state = _State()

    # -- serving

    def _next_behaviour(self) -> Behaviour | None:
        with self._lock:
            return self._state.queue.popleft() if self._state.queue else self._state.sticky

    def _record(self, **fields: Any) -> ReceivedRequest:
        with self._lock:
            request = ReceivedRequest(index=len(self._state.requests), **fields)
            if request.accepted and not request.sandbox and isinstance(request.body, dict):
                self._state.delivered += len(request.body.get("personalizations") or [])
            if not self.keep_bodies:
                request = dataclasses.replace(request, body=None)
            self._state.requests.append(request)
            self._lock.notify_all()
            return request

    def _handle(self, handler: MailSendHandler, raw: bytes) -> None:
        behaviour = self._next_behaviour()
        authorized = handler.headers.get("Authorization") == f"Bearer {self.api_key}"
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        common = {
            "received_at": time.time(),
            "size": len(raw),
            "body": body,
            "authorized": authorized,
        }
        if isinstance(behaviour, Reply):
            self._record(**common, accepted=False, status=behaviour.status, behaviour="reply")
            handler.answer(behaviour.status, behaviour.body, behaviour.headers)
            return
        status, errors = validate_request_bytes(raw) if self.validate else (202, [])
        if not authorized:
            refusal = "The provided authorization grant is invalid, expired, or revoked"
            status, errors = 401, [api_error(refusal, None)]
        accepted = status == 202
        if (
            accepted
            and isinstance(body, dict)
            and (body.get("mail_settings") or {}).get("sandbox_mode", {}).get("enable")
        ):
            status = 200  # sandbox mode validates and answers 200, delivering nothing
        message_id = secrets.token_urlsafe(16) if accepted else None
        if isinstance(behaviour, Hang | Drop):
            kind = "hang" if isinstance(behaviour, Hang) else "drop"
            taken = behaviour.accept and accepted
            # Registered before the request is recorded: a test that saw it
            # (wait_for_requests) and then calls release() must reach it.
            released = threading.Event()
            if isinstance(behaviour, Hang):
                with self._lock:
                    self._state.hung.append(released)
            self._record(
                **common,
                accepted=taken,
                status=None,
                behaviour=kind,
                errors=tuple(errors),
                message_id=message_id if taken else None,
            )
            if isinstance(behaviour, Hang):
                released.wait(self.hang_timeout)
                if behaviour.answer_on_release and released.is_set():
                    answer = (("X-Message-Id", message_id or ""),) if taken else ()
                    handler.answer(status if taken else 400, b"", answer)
                    return
            handler.close_connection = True
            return  # the connection closes with no response written
        self._record(
            **common,
            accepted=accepted,
            status=status,
            behaviour="normal",
            errors=tuple(errors),
            message_id=message_id,
        )
        if self.latency:
            time.sleep(self.latency)  # the provider's round trip, not a wait for an event
        if accepted:
            headers: tuple[tuple[str, str], ...] = (("X-Message-Id", message_id or ""),)
            handler.answer(status, b"", headers)
        else:
            handler.answer(status, json.dumps({"errors": errors}).encode())
