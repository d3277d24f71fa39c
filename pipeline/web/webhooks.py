"""``POST /webhooks/sendgrid``: SendGrid's signed Event Webhook.

Every request is checked before its body is even parsed: the ECDSA signature
(``EventWebhook`` from the sendgrid library, over the timestamp header plus
the raw body, exactly as SendGrid signs) and the signed timestamp, which must
lie within ``[web] webhook_max_age_seconds`` of now, so a captured request
cannot be replayed later. Unsigned, tampered or stale requests get 403; with
no ``SENDGRID_WEBHOOK_PUBLIC_KEY`` configured, every request gets 503 (SendGrid
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
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sendgrid.helpers.eventwebhook import EventWebhook, EventWebhookHeader
from starlette.concurrency import run_in_threadpool

from ..errors import ConfigError
from .context import WebContext
from .events import record_events

SIGNATURE_HEADER: Final[str] = EventWebhookHeader.SIGNATURE
TIMESTAMP_HEADER: Final[str] = EventWebhookHeader.TIMESTAMP
#: SendGrid batches events; a batch this large is not one of theirs.
MAX_BODY: Final = 5 * 1024 * 1024

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
            if not isinstance(load_der_public_key(der), ec.EllipticCurvePublicKey):
                raise TypeError("not an elliptic-curve key")
            self._webhook = EventWebhook(body)
        except (ValueError, TypeError, binascii.Error, UnsupportedAlgorithm):
            # The key itself is never quoted: settings errors may be logged.
            raise ConfigError(
                "SENDGRID_WEBHOOK_PUBLIC_KEY is not a valid ECDSA public key "
                "(paste the Verification Key from SendGrid's Signed Event Webhook settings)"
            ) from None
        self._max_age = max_age
        self._clock = clock

    def verify(self, body: bytes, signature: str | None, timestamp: str | None) -> None:
        """Return if the request is authentic and fresh; raise :class:`WebhookRefused` if not."""
        if not signature or not timestamp:
            raise WebhookRefused(403, "missing signature")
        stamp = timestamp.strip()
        if not stamp.isdigit() or len(stamp) > 12:
            raise WebhookRefused(403, "malformed timestamp")
        age = self._clock().timestamp() - int(stamp)
        if abs(age) > self._max_age:
            raise WebhookRefused(403, "timestamp outside the replay window")
        try:
            payload = body.decode("utf-8")
            base64.b64decode(signature, validate=True)
            valid = bool(self._webhook.verify_signature(payload, signature, stamp))
        except (UnicodeDecodeError, binascii.Error, ValueError, TypeError, InvalidSignature):
            valid = False
        if not valid:
            raise WebhookRefused(403, "signature does not verify")


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

    @router.post("/webhooks/sendgrid")
    async def sendgrid_events(request: Request) -> JSONResponse:
        try:
            if verifier is None:
                raise WebhookRefused(503, "event webhook not configured")
            body = await _read_body(request)
            verifier.verify(
                body, request.headers.get(SIGNATURE_HEADER), request.headers.get(TIMESTAMP_HEADER)
            )
            items = _events(body)
        except WebhookRefused as refused:
            _log.warning("SendGrid webhook refused: %s", refused.reason)
            return JSONResponse({"detail": refused.reason}, status_code=refused.status)
        report = await run_in_threadpool(record_events, ctx.newsletter.sessions, items, ctx.clock())
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


def _events(body: bytes) -> list[Any]:
    try:
        data = json.loads(body)
    except ValueError:
        raise WebhookRefused(400, "body is not JSON") from None
    if not isinstance(data, list):
        raise WebhookRefused(400, "body is not a JSON array of events")
    return data
