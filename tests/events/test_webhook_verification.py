"""SendGrid's signed Event Webhook, verification: signatures, keys, replay window, body size."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import select

from pipeline.errors import ConfigError
from pipeline.newsletter import Newsletter
from pipeline.store.models import WebhookEvent
from pipeline.web.app import create_app
from pipeline.web.webhooks import SIGNATURE_HEADER, TIMESTAMP_HEADER
from tests.events.webhook_helpers import (
    _KEY,
    PRIYA,
    SAM,
    counts,
    event,
    ids_of,
    post_events,
    signed_headers,
    stored,
)
from tests.helpers import SAMPLE_SLUG, FixedClock
from tests.web.helpers import (
    NEXT_SLUG,
    assert_security_headers,
    make_newsletter,
    status_of,
    web_client,
)

pytestmark = pytest.mark.anyio


# -- verification ------------------------------------------------------------------------


async def test_a_signed_hard_bounce_suppresses_its_address(
    newsletter: Newsletter, clock: FixedClock, client: httpx.AsyncClient
) -> None:
    bounce = event(newsletter, "bounce", SAM, type="bounce", reason="550 5.1.1 no such user")
    response = await post_events(client, clock, [bounce])
    assert response.status_code == 200, response.text
    assert response.json() == {
        "received": 1,
        "stored": 1,
        "duplicates": 0,
        "invalid": 0,
        "suppressed": 1,
    }
    assert_security_headers(response)
    assert status_of(newsletter, SAM) == "bounced"
    assert status_of(newsletter, PRIYA) == "active"
    assert counts(newsletter)["bounced"] == 1
    with newsletter.sessions() as session:
        row = session.scalars(select(WebhookEvent)).one()
    assert (row.event, row.email, row.campaign_slug) == ("bounce", SAM, SAMPLE_SLUG)
    assert row.reason == "550 5.1.1 no such user"
    assert row.delivery_id == ids_of(newsletter, SAM)[0]
    assert row.raw["sg_event_id"] == bounce["sg_event_id"]
    # The next campaign skips the address.
    assert newsletter.send(NEXT_SLUG).counts.planned == 4


async def test_unsigned_requests_are_refused(
    newsletter: Newsletter, client: httpx.AsyncClient
) -> None:
    body = json.dumps([event(newsletter, "bounce", SAM)]).encode()
    response = await client.post(
        "/webhooks/sendgrid", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 403
    assert response.json() == {"detail": "missing signature"}
    assert status_of(newsletter, SAM) == "active" and stored(newsletter) == 0


async def test_tampered_wrongly_signed_and_malformed_requests_are_refused(
    newsletter: Newsletter, clock: FixedClock, client: httpx.AsyncClient
) -> None:
    stamp = int(clock.now.timestamp())
    body = json.dumps([event(newsletter, "spamreport", SAM)]).encode()
    good = signed_headers(body, stamp)
    other_key = ec.generate_private_key(ec.SECP256R1())
    attempts = {
        "tampered body": (body.replace(b"spamreport", b"unsubscribe"), good),
        "other timestamp": (body, {**good, TIMESTAMP_HEADER: str(stamp - 1)}),
        "someone else's key": (body, signed_headers(body, stamp, other_key)),
        "not base64": (body, {**good, SIGNATURE_HEADER: "!!not base64!!"}),
        "garbage signature": (body, {**good, SIGNATURE_HEADER: base64.b64encode(b"x").decode()}),
        "malformed timestamp": (body, {**good, TIMESTAMP_HEADER: "soon"}),
        "not UTF-8, signed by someone else": (
            b"\xff\xfe" + body,
            signed_headers(b"\xff\xfe" + body, stamp, other_key),
        ),
    }
    for name, (content, headers) in attempts.items():
        response = await client.post("/webhooks/sendgrid", content=content, headers=headers)
        assert response.status_code == 403, name
    assert status_of(newsletter, SAM) == "active" and stored(newsletter) == 0


async def test_stale_and_future_timestamps_are_refused(
    newsletter: Newsletter, clock: FixedClock, client: httpx.AsyncClient
) -> None:
    body = json.dumps([event(newsletter, "bounce", SAM)]).encode()
    now = int(clock.now.timestamp())
    for stamp in (now - 301, now + 301):  # [web] webhook_max_age_seconds = 300
        response = await client.post(
            "/webhooks/sendgrid", content=body, headers=signed_headers(body, stamp)
        )
        assert response.status_code == 403
        assert response.json() == {"detail": "timestamp outside the replay window"}
    # A correctly signed request replayed later than the window is refused too.
    fresh = signed_headers(body, now)
    clock.advance(minutes=6)
    replay = await client.post("/webhooks/sendgrid", content=body, headers=fresh)
    assert replay.status_code == 403
    assert status_of(newsletter, SAM) == "active" and stored(newsletter) == 0


async def test_signed_but_unusable_bodies_are_400(
    clock: FixedClock, client: httpx.AsyncClient
) -> None:
    stamp = int(clock.now.timestamp())
    for body in (b"not json", b'{"event": "bounce"}'):
        response = await client.post(
            "/webhooks/sendgrid", content=body, headers=signed_headers(body, stamp)
        )
        assert response.status_code == 400


async def test_without_a_configured_key_everything_is_refused(tmp_path: Path) -> None:
    newsletter = make_newsletter(tmp_path / "nokey")
    body = b"[]"
    async with web_client(create_app(newsletter)) as client:
        response = await client.post(
            "/webhooks/sendgrid",
            content=body,
            headers=signed_headers(body, int(newsletter.clock().timestamp())),
        )
    assert response.status_code == 503


def test_a_bad_public_key_is_a_clear_settings_error(tmp_path: Path) -> None:
    newsletter = make_newsletter(
        tmp_path / "bad",
        send=False,
        environ={"SENDGRID_WEBHOOK_PUBLIC_KEY": "c2VjcmV0LW5vdC1hLWtleQ=="},
    )
    with pytest.raises(ConfigError, match="SENDGRID_WEBHOOK_PUBLIC_KEY") as raised:
        create_app(newsletter)
    assert "c2VjcmV0" not in str(raised.value)


async def test_a_pem_public_key_works_too(tmp_path: Path) -> None:
    pem = (
        _KEY.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    clock = FixedClock()
    newsletter = make_newsletter(
        tmp_path / "pem", clock=clock, environ={"SENDGRID_WEBHOOK_PUBLIC_KEY": pem}
    )
    async with web_client(create_app(newsletter)) as client:
        response = await post_events(client, clock, [event(newsletter, "delivered", SAM)])
    assert response.status_code == 200


async def test_oversized_bodies_are_refused(clock: FixedClock, client: httpx.AsyncClient) -> None:
    # Fresh signature headers (checked before the body), then a body too large to read.
    headers = signed_headers(b"[]", int(clock.now.timestamp()))
    response = await client.post(
        "/webhooks/sendgrid", content=b"[" + b" " * (5 * 1024 * 1024) + b"]", headers=headers
    )
    assert response.status_code == 413
