"""A SendGrid-compatible ``POST /v3/mail/send`` on 127.0.0.1, strict enough to trust.

Every body is validated against SendGrid's own published schema
(``tests/data/sendgrid/sendgrid-mail-v3.json``, ``components.requestBodies.PostMailSend``)
and against the limits its documentation states only in prose. Tests script
faults (429, 5xx, 400, 401, a hung or dropped connection) and read back what
was accepted.

Usage::

    from tests.fakes.sendgrid_server import SendGridServer, Reply, Hang, sendgrid_server_fixture

    def test_x(sendgrid_server: SendGridServer) -> None:
        sendgrid_server.script(Reply.rate_limited(reset=1_800_000_000), Reply.error(500))
        ...  # point SENDGRID_API_HOST at sendgrid_server.url, key TEST_API_KEY
        assert sendgrid_server.delivered_addresses() == [...]

or ``with SendGridServer() as server: ...`` outside pytest fixtures.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from tests.fakes.sendgrid_faults import Behaviour, Drop, Hang, Reply
from tests.fakes.sendgrid_handler import (
    TEST_API_KEY,
    MailSendHandler,
    MailSendHTTPServer,
    ScriptedMailSend,
)
from tests.fakes.sendgrid_records import Delivery, ReceivedRequest
from tests.fakes.sendgrid_validation import (
    DEFAULT_SPEC,
    MAX_BODY_BYTES,
    MAX_CUSTOM_ARGS_BYTES,
    MAX_PERSONALIZATIONS,
    MAX_RECIPIENTS,
    MAX_SUBSTITUTIONS_BYTES,
    REQUEST_SCHEMA_POINTER,
    RESERVED_HEADERS,
    SPEC_ENV,
    SPEC_URI,
    ApiError,
    SpecNotFoundError,
    spec_path,
    validate_mail_send,
    validate_request_bytes,
)

# The validation (sendgrid_validation.py), the scripted answers (sendgrid_faults.py),
# the records (sendgrid_records.py) and the answering of each request
# (sendgrid_handler.py) have their own modules; everything this module used to
# define is still importable from here.
__all__ = [
    "DEFAULT_SPEC",
    "MAX_BODY_BYTES",
    "MAX_CUSTOM_ARGS_BYTES",
    "MAX_PERSONALIZATIONS",
    "MAX_RECIPIENTS",
    "MAX_SUBSTITUTIONS_BYTES",
    "REQUEST_SCHEMA_POINTER",
    "RESERVED_HEADERS",
    "SPEC_ENV",
    "SPEC_URI",
    "TEST_API_KEY",
    "ApiError",
    "Behaviour",
    "Delivery",
    "Drop",
    "Hang",
    "ReceivedRequest",
    "Reply",
    "SendGridServer",
    "SpecNotFoundError",
    "sendgrid_server_fixture",
    "spec_path",
    "validate_mail_send",
    "validate_request_bytes",
]


# -- the server ------------------------------------------------------------------------


class SendGridServer(ScriptedMailSend):
    """The fake SendGrid. Start with ``with``; ``url`` is what SENDGRID_API_HOST takes.

    What each request gets (its settings: ``api_key``, ``hang_timeout``,
    ``validate``, ``keep_bodies``, ``latency``) is in :class:`ScriptedMailSend`.
    """

    _httpd: MailSendHTTPServer | None = None
    _thread: threading.Thread | None = None

    # -- lifecycle

    def start(self) -> SendGridServer:
        """Listen on 127.0.0.1 at a free port, serving from a background thread."""
        httpd = MailSendHTTPServer(("127.0.0.1", 0), MailSendHandler)
        httpd.owner = self
        self._httpd = httpd
        self._thread = threading.Thread(
            # a short poll interval: stop() (once per test) then takes milliseconds
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.02},
            name="sendgrid-fake",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Release hung requests, stop serving and close the socket."""
        self.release()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = self._thread = None

    def __enter__(self) -> SendGridServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The port it listens on."""
        assert self._httpd is not None, "the server is not started"
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """Base URL, for SENDGRID_API_HOST."""
        return f"http://127.0.0.1:{self.port}"

    # -- controls

    def script(self, *behaviours: Behaviour | None) -> None:
        """Answer the next requests with these, in order (None: answer that one normally)."""
        with self._lock:
            self._state.queue.extend(behaviours)

    def always(self, behaviour: Behaviour | None) -> None:
        """Answer every request with ``behaviour`` once the script is used up (None: normal)."""
        with self._lock:
            self._state.sticky = behaviour

    def release(self) -> None:
        """Let every hung request end (its connection closes without an answer)."""
        with self._lock:
            hung, self._state.hung = self._state.hung, []
        for event in hung:
            event.set()

    # -- what happened

    @property
    def requests(self) -> list[ReceivedRequest]:
        """Every request read so far, in arrival order."""
        with self._lock:
            return list(self._state.requests)

    def accepted(self) -> list[ReceivedRequest]:
        """Requests SendGrid would have taken (sandboxed ones included)."""
        return [r for r in self.requests if r.accepted]

    def refused(self) -> list[ReceivedRequest]:
        """Requests not taken: errors, scripted answers, hung or dropped ones."""
        return [r for r in self.requests if not r.accepted]

    def deliveries(self) -> list[Delivery]:
        """Every personalization of every accepted, non-sandbox request, in order."""
        found = []
        for request in self.accepted():
            if request.sandbox:
                continue
            for item in request.body.get("personalizations", []):
                for address in item.get("to", []):
                    found.append(
                        Delivery(
                            email=address["email"],
                            substitutions=item.get("substitutions", {}),
                            custom_args=item.get("custom_args", {}),
                            headers=item.get("headers", {}),
                            message_id=request.message_id,
                            request_index=request.index,
                        )
                    )
        return found

    def delivered_count(self) -> int:
        """How many personalizations were accepted for delivery (kept even without bodies)."""
        with self._lock:
            return self._state.delivered

    def delivered_addresses(self) -> list[str]:
        """Every delivered address, once per delivery (a repeat shows up twice)."""
        return [d.email for d in self.deliveries()]

    def wait_for_requests(self, count: int, timeout: float = 5.0) -> list[ReceivedRequest]:
        """Block until at least ``count`` requests have been read (AssertionError on timeout)."""
        with self._lock:
            if not self._lock.wait_for(lambda: len(self._state.requests) >= count, timeout):
                raise AssertionError(
                    f"expected {count} request(s) within {timeout} s, "
                    f"got {len(self._state.requests)}"
                )
            return list(self._state.requests)


@pytest.fixture(name="sendgrid_server")
def sendgrid_server_fixture(monkeypatch: pytest.MonkeyPatch) -> Iterator[SendGridServer]:
    """A started :class:`SendGridServer` accepting ``TEST_API_KEY``; stopped after the test."""
    # urllib honours proxy variables; the fake must be reached directly.
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    with SendGridServer() as server:
        yield server
