"""``POST /webhooks/sendgrid``: SendGrid's signed Event Webhook.

The headers are checked before a byte of the body is read: a request without
both signature headers, or whose signed timestamp lies outside ``[web]
webhook_max_age_seconds`` of now (a captured request replayed later), gets 403
at once, so unsigned posts cost no memory. At most :data:`MAX_IN_FLIGHT`
bodies are read at a time; beyond that the answer is 503 at once (SendGrid
retries). Then the ECDSA signature over the timestamp header plus the raw body
bytes (exactly as SendGrid signs) is verified before the body is parsed;
tampered requests get 403. A signed body that is not a JSON array of events
(not UTF-8, nested too deep, an object) gets 400. With no
``SENDGRID_WEBHOOK_PUBLIC_KEY`` configured, every request gets 503 (SendGrid
retries, so nothing is lost while the key is being set up).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any, Final

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sendgrid.helpers.eventwebhook import EventWebhookHeader
from starlette.concurrency import run_in_threadpool

from pipeline.errors import ConfigError
from pipeline.events.record import store_events
from pipeline.events.sendgrid import parse_events
from pipeline.web.context import WebContext

SIGNATURE_HEADER: Final[str] = EventWebhookHeader.SIGNATURE
TIMESTAMP_HEADER: Final[str] = EventWebhookHeader.TIMESTAMP
#: SendGrid batches events; a batch this large is not one of theirs.
MAX_BODY: Final = 5 * 1024 * 1024
#: Webhook bodies read at once; beyond this a request gets 503 before its body is read
#: (memory stays under MAX_IN_FLIGHT * MAX_BODY, plus the parsed events).
MAX_IN_FLIGHT: Final = 4

_log = logging.getLogger(__name__)


class WebhookRefused(Exception):
    """A webhook request that must not be processed; ``status`` is the HTTP answer."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def _key_body(public_key: str) -> str:
    """The base64 key SendGrid shows, from either that or a whole PEM block."""
    lines = [line.strip() for line in public_key.strip().splitlines()]
    return "".join(line for line in lines if line and not line.startswith("-----"))


class WebhookVerifier:
    """Checks SendGrid's signature and the replay window of one request."""

    def __init__(self, public_key: str, *, max_age: int, clock: Callable[[], datetime]) -> None:
        body = _key_body(public_key)
        try:
            # Checked here, not left to the library: an RSA key would fail every request.
            der = base64.b64decode(body, validate=True)
            key = load_der_public_key(der)
            if not isinstance(key, ec.EllipticCurvePublicKey):
                raise TypeError("not an elliptic-curve key")
            self._key = key
        except (ValueError, TypeError, binascii.Error, UnsupportedAlgorithm):
            # The key itself is never quoted: settings errors may be logged.
            raise ConfigError(
                "SENDGRID_WEBHOOK_PUBLIC_KEY is not a valid ECDSA public key "
                "(paste the Verification Key from SendGrid's Signed Event Webhook settings)"
            ) from None
        self._max_age = max_age
        self._clock = clock

    def check_headers(self, signature: str | None, timestamp: str | None) -> tuple[bytes, str]:
        """The decoded signature and timestamp, if present and fresh (no body needed yet)."""
        if not signature or not timestamp:
            raise WebhookRefused(403, "missing signature")
        stamp = timestamp.strip()
        if not stamp.isdigit() or len(stamp) > 12:
            raise WebhookRefused(403, "malformed timestamp")
        age = self._clock().timestamp() - int(stamp)
        if abs(age) > self._max_age:
            raise WebhookRefused(403, "timestamp outside the replay window")
        try:
            return base64.b64decode(signature.strip(), validate=True), stamp
        except (binascii.Error, ValueError):
            raise WebhookRefused(403, "malformed signature") from None

    def verify(self, body: bytes, signature: str | None, timestamp: str | None) -> None:
        """Return if the request is authentic and fresh; raise :class:`WebhookRefused` if not."""
        decoded, stamp = self.check_headers(signature, timestamp)
        # Over the raw bytes (as SendGrid signs), so a signed body that is not UTF-8
        # still verifies and is then refused as unparsable (400), not as forged.
        try:
            self._key.verify(decoded, stamp.encode("ascii") + body, ec.ECDSA(hashes.SHA256()))
        except (InvalidSignature, ValueError, TypeError):
            raise WebhookRefused(403, "signature does not verify") from None


async def _read_body(request: Request) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY:
        raise WebhookRefused(413, "body too large")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise WebhookRefused(413, "body too large")
        chunks.append(chunk)
    return b"".join(chunks)


def make_verifier(ctx: WebContext) -> WebhookVerifier | None:
    """The verifier for the configured key, or None when no key is set."""
    key = ctx.settings.sendgrid_webhook_public_key
    if key is None:
        return None
    return WebhookVerifier(
        key.get_secret_value(), max_age=ctx.settings.web.webhook_max_age_seconds, clock=ctx.clock
    )


def webhook_routes(ctx: WebContext) -> APIRouter:
    """``POST /webhooks/sendgrid``."""
    router = APIRouter()
    verifier = make_verifier(ctx)
    # One event loop runs every request, so a plain counter is exact (no await between
    # the test and the increment).
    in_flight = 0

    @router.post("/webhooks/sendgrid")
    async def sendgrid_events(request: Request) -> JSONResponse:
        nonlocal in_flight
        signature = request.headers.get(SIGNATURE_HEADER)
        timestamp = request.headers.get(TIMESTAMP_HEADER)
        try:
            if verifier is None:
                raise WebhookRefused(503, "event webhook not configured")
            verifier.check_headers(signature, timestamp)  # before reading any of the body
            if in_flight >= MAX_IN_FLIGHT:
                raise WebhookRefused(503, "too many webhook requests at once")
        except WebhookRefused as refused:
            return _refusal(refused)
        in_flight += 1
        try:
            body = await _read_body(request)
            verifier.verify(body, signature, timestamp)
            items = _events(body)
            del body
            now, key = ctx.clock(), ctx.settings.secret_key.get_secret_value()
            # Parsed and stored off the event loop: a batch can hold thousands of events.
            report = await run_in_threadpool(
                lambda: store_events(
                    ctx.newsletter.sessions, parse_events(items, now), now, secret_key=key
                )
            )
        except WebhookRefused as refused:
            return _refusal(refused)
        finally:
            in_flight -= 1
        return JSONResponse(
            {
                "received": report.received,
                "stored": report.stored,
                "duplicates": report.duplicates,
                "invalid": report.invalid,
                "suppressed": report.suppressed,
            }
        )

    return router


def _refusal(refused: WebhookRefused) -> JSONResponse:
    _log.warning("SendGrid webhook refused: %s", refused.reason)
    headers = {"Retry-After": "10"} if refused.status == 503 else None
    return JSONResponse({"detail": refused.reason}, status_code=refused.status, headers=headers)


def _events(body: bytes) -> list[Any]:
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):  # ValueError includes UnicodeDecodeError
        raise WebhookRefused(400, "body is not JSON") from None
    if not isinstance(data, list):
        raise WebhookRefused(400, "body is not a JSON array of events")
    return data
