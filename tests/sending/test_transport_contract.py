"""The provider contract (transports/base.py): a new HTTP provider is one subclass and one line.

A tiny provider defined here, with no SendGrid code in it, is registered in
``TRANSPORTS`` and built by ``make_transport`` from settings, then sends
against a real HTTP server on 127.0.0.1. Retrying a 503, never resending after
a 504 and failing a 400 must come from the shared layer (transports/http.py).
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from pipeline.config import Settings, load_settings
from pipeline.render import RenderedIssue
from pipeline.render.message import Sender
from pipeline.sending.transports import (
    TRANSPORTS,
    Provider,
    TransportEnv,
    make_transport,
    provider_sections,
)
from pipeline.sending.transports.base import CampaignMessage, Outcome, Recipient
from pipeline.sending.transports.http import HttpAnswer, HttpTransport, Verdict
from tests.helpers import FixedClock

ROOT = Path(__file__).resolve().parents[2]


class TinyServer:
    """A loopback HTTP API that answers each POST with the next scripted status."""

    def __init__(self) -> None:
        self.statuses: deque[int] = deque()
        self.bodies: list[bytes] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                server.bodies.append(self.rfile.read(length))
                status = server.statuses.popleft() if server.statuses else 200
                payload = json.dumps({"status": status}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}/send"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


class TinyTransport(HttpTransport):
    """The whole provider: its name, what its statuses mean, its body and its POST."""

    name = "tiny"
    label = "Tiny"
    max_per_request = 2
    status_verdicts: ClassVar[Mapping[int, Verdict]] = {
        200: Verdict.ACCEPTED,
        400: Verdict.REFUSED,
        503: Verdict.RETRY,
        504: Verdict.MAYBE_ACCEPTED,
    }

    def __init__(self, url: str, env: TransportEnv) -> None:
        super().__init__(
            secret=None,
            timeout=5.0,
            max_retries=2,
            max_rate_limit_wait=10.0,
            clock=env.clock,
            sleep=env.sleep,
            jitter=lambda: 0.0,
        )
        self.url = url

    def recipient_parts(self, message: CampaignMessage, people: Sequence[Recipient]) -> list[Any]:
        return [{"to": person.email} for person in people]

    def request_body(self, message: CampaignMessage, parts: list[Any]) -> bytes:
        return json.dumps({"subject": message.issue.subject, "to": parts}).encode()

    def post(self, body: str | bytes) -> HttpAnswer:
        data = body.encode() if isinstance(body, str) else body
        request = urllib.request.Request(self.url, data=data, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:
                return HttpAnswer(response.status, dict(response.headers), response.read())
        except urllib.error.HTTPError as exc:
            return HttpAnswer(exc.code, dict(exc.headers), exc.read())


class FakeSleep:
    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@pytest.fixture
def server() -> Iterator[TinyServer]:
    running = TinyServer()
    yield running
    running.close()


@pytest.fixture
def registered(server: TinyServer) -> Iterator[None]:
    # The registry line the contract asks for (section None: no options of its own).
    TRANSPORTS["tiny"] = Provider(lambda env: TinyTransport(server.url, env))
    yield
    del TRANSPORTS["tiny"]


@pytest.fixture
def settings() -> Settings:
    loaded = load_settings(ROOT / "newsletter.toml", environ={"NEWSLETTER_SECRET_KEY": "t"})
    sending = loaded.sending.model_copy(update={"transport": "tiny"})
    return loaded.model_copy(update={"sending": sending})


MESSAGE = CampaignMessage(
    campaign="c1",
    issue=RenderedIssue(slug="c1", subject="Hello", preheader="", html="<p>Hi</p>", text="Hi"),
    sender=Sender("news@clinic.example", "Clinic", None),
)


def people(n: int) -> list[Recipient]:
    return [Recipient(f"r{i}@example.com", "R", f"http://x/u/{i}") for i in range(n)]


def sent_addresses(bodies: list[bytes]) -> list[list[str]]:
    return [[part["to"] for part in json.loads(body)["to"]] for body in bodies]


def test_a_503_is_retried_by_the_shared_layer(
    server: TinyServer, registered: None, settings: Settings
) -> None:
    server.statuses.extend([503, 200])
    sleep = FakeSleep()
    with make_transport(settings, FixedClock(), sleep) as transport:
        assert isinstance(transport, TinyTransport)
        results = transport.send_batch(MESSAGE, people(2))
    assert [r.outcome for r in results] == [Outcome.SENT, Outcome.SENT]
    assert sent_addresses(server.bodies) == [["r0@example.com", "r1@example.com"]] * 2
    assert sleep.calls == [0.5]  # one backoff: base 1 s, halved by zero jitter


def test_503_until_the_retries_run_out_is_deferred(
    server: TinyServer, registered: None, settings: Settings
) -> None:
    server.statuses.extend([503, 503, 503])
    with make_transport(settings, FixedClock(), FakeSleep()) as transport:
        results = transport.send_batch(MESSAGE, people(1))
    assert results[0].outcome is Outcome.DEFERRED
    assert results[0].error == "Tiny unavailable (503): no details (3 tries)"
    assert len(server.bodies) == 3


def test_a_504_is_uncertain_and_nothing_after_it_is_sent(
    server: TinyServer, registered: None, settings: Settings
) -> None:
    # Two requests of two: the first may have been accepted, so the second waits.
    server.statuses.extend([504])
    with make_transport(settings, FixedClock(), FakeSleep()) as transport:
        results = transport.send_batch(MESSAGE, people(4))
    assert [r.outcome for r in results] == [Outcome.UNCERTAIN] * 2 + [Outcome.DEFERRED] * 2
    assert "Tiny's gateway answered 504 Gateway Timeout" in (results[0].error or "")
    assert len(server.bodies) == 1  # never sent again


def test_a_400_fails_the_request_and_duplicates_go_once(
    server: TinyServer, registered: None, settings: Settings
) -> None:
    server.statuses.extend([400])
    batch = [*people(1), Recipient("R0@example.com", "R", "http://x/u/0b")]
    with make_transport(settings, FixedClock(), FakeSleep()) as transport:
        results = transport.send_batch(MESSAGE, batch)
    assert [r.outcome for r in results] == [Outcome.FAILED, Outcome.FAILED]
    assert results[0].error == "Tiny refused the request (400): HTTP 400"
    assert results[1].error == "duplicate address in batch"
    assert sent_addresses(server.bodies) == [["r0@example.com"]]


def test_every_provider_section_is_the_settings_field_of_that_name() -> None:
    # Each provider owns its section's model; Settings types its field with that model.
    sections = provider_sections()
    assert set(sections) == {"smtp", "sendgrid"}
    for section, model in sections.items():
        assert Settings.model_fields[section].annotation is model
