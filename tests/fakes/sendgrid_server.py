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

import copy
import dataclasses
import functools
import json
import os
import secrets
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Final

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

#: The key the server accepts unless told another.
TEST_API_KEY: Final = "SG.test-key"
SPEC_ENV: Final = "SENDGRID_SPEC_PATH"
#: A copy kept in the repository (with SendGrid's MIT license beside it), so a
#: clone with nothing beside it passes ``make test``.
DEFAULT_SPEC: Final = (
    Path(__file__).resolve().parents[1] / "data" / "sendgrid" / "sendgrid-mail-v3.json"
)
SPEC_URI: Final = "urn:sendgrid:mail-v3"
REQUEST_SCHEMA_POINTER: Final = (
    "#/components/requestBodies/PostMailSend/content/application~1json/schema"
)

# Limits SendGrid documents in prose, not in the schema.
MAX_BODY_BYTES: Final = 30 * 1024 * 1024
MAX_PERSONALIZATIONS: Final = 1000
MAX_RECIPIENTS: Final = 1000
MAX_CUSTOM_ARGS_BYTES: Final = 10_000
MAX_SUBSTITUTIONS_BYTES: Final = 10_000
RESERVED_HEADERS: Final = frozenset(
    name.lower()
    for name in (
        "x-sg-id", "x-sg-eid", "received", "dkim-signature", "Content-Type",
        "Content-Transfer-Encoding", "To", "From", "Subject", "Reply-To", "CC", "BCC",
    )
)  # fmt: skip
_CONTENT_RANK: Final = {"text/plain": 0, "text/html": 1}

ApiError = dict[str, str | None]


class SpecNotFoundError(AssertionError):
    """The SendGrid schema is missing: tests that need it fail (never skip) with this."""


# -- validation ------------------------------------------------------------------------


def spec_path() -> Path:
    """Where the schema is: ``$SENDGRID_SPEC_PATH``, else the repository's copy."""
    configured = os.environ.get(SPEC_ENV)
    path = Path(configured) if configured else DEFAULT_SPEC
    if not path.is_file():
        raise SpecNotFoundError(
            f"SendGrid's schema is not at {path}: restore tests/data/sendgrid/ "
            f"or set {SPEC_ENV} to its path"
        )
    return path


@functools.cache
def _validator() -> Draft202012Validator:
    spec = json.loads(spec_path().read_text(encoding="utf-8"))
    spec = copy.deepcopy(spec)
    request = spec["components"]["requestBodies"]["PostMailSend"]["content"]["application/json"]
    # The published spec types message-level custom_args as a string; the live
    # API (and the SDK's Mail helper) send an object of strings (specs/README.md).
    request["schema"]["properties"]["custom_args"] = {
        "type": "object",
        "additionalProperties": {"type": "string"},
    }
    # The whole document is one resource, so the schema's "#/components/..."
    # references resolve against the components beside it.
    resource = Resource.from_contents(spec, default_specification=DRAFT202012)
    registry: Registry[Any] = Registry().with_resource(SPEC_URI, resource)
    return Draft202012Validator(
        {"$ref": SPEC_URI + REQUEST_SCHEMA_POINTER},
        registry=registry,
        format_checker=Draft202012Validator.FORMAT_CHECKER,
    )


def _error(message: str, field: str | None) -> ApiError:
    return {"message": message, "field": field, "help": None}


def _json_size(value: object) -> int:
    return len(json.dumps(value, ensure_ascii=False).encode("utf-8"))


def _check_headers(headers: object, where: str) -> Iterator[ApiError]:
    if not isinstance(headers, dict):
        return
    for name, value in headers.items():
        if name.lower() in RESERVED_HEADERS:
            yield _error(f"The header {name} is reserved and cannot be set.", f"{where}.{name}")
        if not isinstance(value, str):
            yield _error("Header values must be strings.", f"{where}.{name}")


def _check_custom_args(args: object, where: str) -> Iterator[ApiError]:
    if not isinstance(args, dict):
        return
    for name, value in args.items():
        if not isinstance(value, str):
            yield _error("Custom arg values must be strings.", f"{where}.{name}")
    if _json_size(args) > MAX_CUSTOM_ARGS_BYTES:
        yield _error("Custom args may not exceed 10,000 bytes.", where)


def _check_personalization(
    index: int, item: dict[str, Any], seen: dict[str, str], needs_subject: bool
) -> Iterator[ApiError]:
    where = f"personalizations.{index}"
    if isinstance(item.get("to"), list) and not item["to"]:
        yield _error(
            "The to array is required for all personalization objects, and must have "
            "at least one email object with a valid email address.",
            f"{where}.to",
        )
    for kind in ("to", "cc", "bcc"):
        addresses = item.get(kind)
        for position, address in enumerate(addresses if isinstance(addresses, list) else []):
            email = address.get("email") if isinstance(address, dict) else None
            if not isinstance(email, str):
                continue
            key = email.strip().lower()
            if key in seen:
                yield _error(
                    "Each email address should be unique within one request. We found "
                    f"a duplicate of {email} (first at {seen[key]}).",
                    f"{where}.{kind}.{position}.email",
                )
            else:
                seen[key] = f"{where}.{kind}.{position}"
    yield from _check_headers(item.get("headers"), f"{where}.headers")
    yield from _check_custom_args(item.get("custom_args"), f"{where}.custom_args")
    substitutions = item.get("substitutions")
    if isinstance(substitutions, dict) and _json_size(substitutions) > MAX_SUBSTITUTIONS_BYTES:
        yield _error("Substitutions may not exceed 10,000 bytes per personalization.", where)
    if needs_subject and not item.get("subject"):
        yield _error(
            "The subject is required. You can get around this requirement if you use a "
            "template with a subject defined or if every personalization has a subject defined.",
            "subject",
        )


def _prose_errors(body: dict[str, Any]) -> Iterator[ApiError]:
    templated = bool(body.get("template_id"))
    personalizations = body.get("personalizations")
    if isinstance(personalizations, list):
        if not personalizations:
            yield _error(
                "The personalizations field is required and must have at least one "
                "personalization.",
                "personalizations",
            )
        if len(personalizations) > MAX_PERSONALIZATIONS:
            yield _error(
                f"The personalizations field cannot have more than {MAX_PERSONALIZATIONS} "
                "personalizations.",
                "personalizations",
            )
        seen: dict[str, str] = {}
        needs_subject = not templated and not body.get("subject")
        for index, item in enumerate(personalizations):
            if isinstance(item, dict):
                yield from _check_personalization(index, item, seen, needs_subject)
        if len(seen) > MAX_RECIPIENTS:
            yield _error(
                f"A request may have at most {MAX_RECIPIENTS} recipients in total "
                "(to, cc and bcc of every personalization).",
                "personalizations",
            )
    content = body.get("content")
    if isinstance(content, list):
        types = [c.get("type") for c in content if isinstance(c, dict)]
        ranks = [_CONTENT_RANK.get(t, 2) if isinstance(t, str) else 2 for t in types]
        if ranks != sorted(ranks):
            yield _error(
                "If present, text/plain and text/html may only be provided in this order: "
                "text/plain, text/html, then any other content.",
                "content",
            )
        if not content and not templated:
            yield _error("Unless a valid template_id is provided, content is required.", "content")
    elif not templated:
        yield _error("Unless a valid template_id is provided, content is required.", "content")
    if "reply_to" in body and "reply_to_list" in body:
        yield _error("You can use either reply_to or reply_to_list, not both.", "reply_to")
    yield from _check_headers(body.get("headers"), "headers")
    yield from _check_custom_args(body.get("custom_args"), "custom_args")


def validate_mail_send(body: object) -> list[ApiError]:
    """SendGrid-style errors for a parsed request body; empty when SendGrid would take it."""
    errors = []
    for problem in _validator().iter_errors(body):
        path = ".".join(str(part) for part in problem.absolute_path) or None
        message = problem.message
        if len(message) > 300:  # a schema message may quote a 1000-item array
            message = message[:300] + "..."
        errors.append(_error(message, path))
        if len(errors) >= 20:
            break
    if isinstance(body, dict):
        errors.extend(_prose_errors(body))
    return errors


def validate_request_bytes(raw: bytes) -> tuple[int, list[ApiError]]:
    """HTTP status and errors for a raw body: 413 when too large, 400 when invalid, else 202."""
    if len(raw) > MAX_BODY_BYTES:
        return 413, [_error("content too large: a request may be at most 30 MB", None)]
    try:
        body = json.loads(raw)
    except ValueError:
        return 400, [_error("Bad Request: the body is not valid JSON", None)]
    errors = validate_mail_send(body)
    return (400, errors) if errors else (202, [])


# -- scripted behaviour --------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    """A canned HTTP answer for one request (the body is not looked at)."""

    status: int
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()

    @classmethod
    def error(cls, status: int, message: str = "scripted error", field: str | None = None) -> Reply:
        """A SendGrid-style JSON error answer."""
        payload = json.dumps({"errors": [_error(message, field)]}).encode()
        return cls(status, payload, (("Content-Type", "application/json"),))

    @classmethod
    def rate_limited(cls, reset: float | None = None) -> Reply:
        """A 429, with ``X-RateLimit-Reset`` (epoch seconds) when ``reset`` is given."""
        reply = cls.error(429, "too many requests")
        if reset is None:
            return reply
        return Reply(429, reply.body, (*reply.headers, ("X-RateLimit-Reset", str(int(reset)))))


@dataclass(frozen=True)
class Hang:
    """Read the body, then never answer until :meth:`SendGridServer.release` (or timeout).

    With ``accept`` the request counts as delivered (validated as usual) before
    the silence: SendGrid took the mail, the client never heard. With
    ``answer_on_release`` a release sends the normal answer instead of closing:
    a slow request rather than a lost one.
    """

    accept: bool = False
    answer_on_release: bool = False


@dataclass(frozen=True)
class Drop:
    """Read the body, then close the connection without answering (``accept`` as for Hang)."""

    accept: bool = False


Behaviour = Reply | Hang | Drop


@dataclass(frozen=True)
class ReceivedRequest:
    """One request the server read, and what it did with it."""

    index: int
    received_at: float  # time.time()
    size: int
    body: Any  # parsed JSON, None when it was not JSON
    authorized: bool
    accepted: bool  # delivered: counted by deliveries()
    status: int | None  # None: never answered (hung or dropped)
    behaviour: str  # "normal", "reply", "hang" or "drop"
    errors: tuple[ApiError, ...] = ()
    message_id: str | None = None

    @property
    def sandbox(self) -> bool:
        """Whether the request asked for sandbox mode (validated, never delivered)."""
        settings = self.body.get("mail_settings", {}) if isinstance(self.body, dict) else {}
        return bool(settings.get("sandbox_mode", {}).get("enable"))


@dataclass(frozen=True)
class Delivery:
    """One personalization of an accepted request: who got it, with what values."""

    email: str
    substitutions: Mapping[str, str]
    custom_args: Mapping[str, str]
    headers: Mapping[str, str]
    message_id: str | None
    request_index: int


# -- the server ------------------------------------------------------------------------


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    owner: SendGridServer


class _Handler(BaseHTTPRequestHandler):
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: test output stays readable."""

    def do_POST(self) -> None:
        """Mail Send; anything else is 404."""
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        if self.path.split("?", 1)[0] != "/v3/mail/send":
            self.answer(404, json.dumps({"errors": [_error("not found", None)]}).encode())
            return
        media_type = (self.headers.get("Content-Type") or "").split(";", 1)[0].strip()
        if media_type.lower() != "application/json":
            # What SendGrid answers; a charset parameter is fine.
            message = "Content-Type should be application/json."
            self.answer(415, json.dumps({"errors": [_error(message, None)]}).encode())
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


class SendGridServer:
    """The fake SendGrid. Start with ``with``; ``url`` is what SENDGRID_API_HOST takes."""

    def __init__(
        self,
        api_key: str = TEST_API_KEY,
        *,
        hang_timeout: float = 10.0,
        validate: bool = True,
        keep_bodies: bool = True,
        latency: float = 0.0,
    ) -> None:
        _validator()  # fail now, clearly, if the schema is missing
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
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle

    def start(self) -> SendGridServer:
        """Listen on 127.0.0.1 at a free port, serving from a background thread."""
        httpd = _HTTPServer(("127.0.0.1", 0), _Handler)
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

    def _handle(self, handler: _Handler, raw: bytes) -> None:
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
            status, errors = (
                401,
                [_error("The provided authorization grant is invalid, expired, or revoked", None)],
            )
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


@pytest.fixture(name="sendgrid_server")
def sendgrid_server_fixture(monkeypatch: pytest.MonkeyPatch) -> Iterator[SendGridServer]:
    """A started :class:`SendGridServer` accepting ``TEST_API_KEY``; stopped after the test."""
    # urllib honours proxy variables; the fake must be reached directly.
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    with SendGridServer() as server:
        yield server
