"""SendGrid's signed Event Webhook: verification, replay window, suppression, counts."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import func, select

from pipeline.errors import ConfigError
from pipeline.events import event_counts
from pipeline.newsletter import Newsletter
from pipeline.store.models import Delivery, Subscriber, WebhookEvent
from pipeline.subscribers import forget_subscriber
from pipeline.web.app import create_app
from pipeline.web.webhooks import SIGNATURE_HEADER, TIMESTAMP_HEADER
from tests.helpers import SAMPLE_SLUG, FixedClock
from tests.web.test_web import (
    NEXT_SLUG,
    assert_security_headers,
    make_newsletter,
    status_of,
    web_client,
)

pytestmark = pytest.mark.anyio

SAM = "sam.nguyen@example.com"
PRIYA = "priya.sharma@example.com"

_KEY = ec.generate_private_key(ec.SECP256R1())


def public_key_b64(key: ec.EllipticCurvePrivateKey = _KEY) -> str:
    """The key as SendGrid's settings page shows it: base64 of the DER public key."""
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode("ascii")


def signed_headers(
    body: bytes, timestamp: int, key: ec.EllipticCurvePrivateKey = _KEY
) -> dict[str, str]:
    """Sign ``timestamp + body`` exactly as SendGrid does (ECDSA P-256, SHA-256, DER, base64)."""
    signature = key.sign(str(timestamp).encode("ascii") + body, ec.ECDSA(hashes.SHA256()))
    return {
        SIGNATURE_HEADER: base64.b64encode(signature).decode("ascii"),
        TIMESTAMP_HEADER: str(timestamp),
        "Content-Type": "application/json",
    }


@pytest.fixture
def newsletter(tmp_path: Path, clock: FixedClock) -> Newsletter:
    return make_newsletter(
        tmp_path / "clinic",
        clock=clock,
        environ={"SENDGRID_WEBHOOK_PUBLIC_KEY": public_key_b64()},
    )


def ids_of(newsletter: Newsletter, address: str, slug: str = SAMPLE_SLUG) -> tuple[int, int]:
    """(delivery id, subscriber id) of one ledger row."""
    campaign = newsletter.ledger.get_campaign(slug)
    assert campaign is not None
    with newsletter.sessions() as session:
        row = session.execute(
            select(Delivery.id, Subscriber.id)
            .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
            .where(Delivery.campaign_id == campaign.id, Subscriber.email == address)
        ).one()
    return int(row[0]), int(row[1])


def event(
    newsletter: Newsletter, kind: str, address: str, slug: str = SAMPLE_SLUG, **extra: Any
) -> dict[str, Any]:
    """One event as SendGrid posts it, with the custom_args our SendGrid transport sets."""
    delivery_id, subscriber_id = ids_of(newsletter, address, slug)
    return {
        "email": address,
        "timestamp": int(newsletter.clock().timestamp()),
        "event": kind,
        "sg_event_id": uuid.uuid4().hex,
        "sg_message_id": "abc.filter0001.1.0",
        "campaign": slug,
        "delivery_id": str(delivery_id),
        "subscriber_id": str(subscriber_id),
        **extra,
    }


async def post_events(
    client: httpx.AsyncClient,
    clock: FixedClock,
    events: list[dict[str, Any]],
    *,
    key: ec.EllipticCurvePrivateKey = _KEY,
) -> httpx.Response:
    body = json.dumps(events).encode("utf-8")
    stamp = int(clock.now.timestamp())
    return await client.post(
        "/webhooks/sendgrid", content=body, headers=signed_headers(body, stamp, key)
    )


def stored(newsletter: Newsletter) -> int:
    with newsletter.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(WebhookEvent)) or 0)


def counts(newsletter: Newsletter, slug: str = SAMPLE_SLUG) -> dict[str, int]:
    campaign = newsletter.ledger.get_campaign(slug)
    assert campaign is not None
    return event_counts(newsletter.sessions, campaign.id)


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


# -- what events do ----------------------------------------------------------------------------


async def test_processing_is_idempotent_per_sg_event_id(
    newsletter: Newsletter, clock: FixedClock, client: httpx.AsyncClient
) -> None:
    batch = [event(newsletter, "delivered", SAM), event(newsletter, "open", SAM)]
    first = await post_events(client, clock, batch)
    assert first.json()["stored"] == 2
    again = await post_events(client, clock, [*batch, batch[0]])
    assert again.json() == {
        "received": 3,
        "stored": 0,
        "duplicates": 3,
        "invalid": 0,
        "suppressed": 0,
    }
    assert stored(newsletter) == 2
    assert counts(newsletter) == {"delivered": 1, "bounced": 0, "opened": 1, "clicked": 0}


async def test_counts_are_distinct_addresses(
    newsletter: Newsletter, clock: FixedClock, client: httpx.AsyncClient
) -> None:
    batch = [
        *(event(newsletter, "delivered", a) for a in (SAM, PRIYA, "jordan.lee@example.org")),
        event(newsletter, "open", SAM),
        event(newsletter, "open", SAM),  # opened twice: one reader
        event(newsletter, "open", PRIYA),
        event(newsletter, "click", PRIYA, url="https://www.cloudformmassage.com.au/book"),
        event(newsletter, "processed", SAM),  # stored, not counted
    ]
    response = await post_events(client, clock, batch)
    assert response.json()["stored"] == 8
    assert counts(newsletter) == {"delivered": 3, "bounced": 0, "opened": 2, "clicked": 1}
    assert status_of(newsletter, SAM) == "active"


@pytest.mark.parametrize(
    ("kind", "extra", "expected"),
    [
        ("spamreport", {}, "complained"),
        ("unsubscribe", {}, "unsubscribed"),
        ("group_unsubscribe", {"asm_group_id": 1}, "unsubscribed"),
        ("dropped", {"reason": "Bounced Address"}, "bounced"),
        ("dropped", {"reason": "Unsubscribed Address"}, "unsubscribed"),
        ("dropped", {"reason": "Spam Reporting Address"}, "complained"),
        ("dropped", {"reason": "Invalid"}, "bounced"),
        # About the message, not the person: nobody is suppressed.
        ("dropped", {"reason": "Invalid SMTPAPI header"}, "active"),
        ("bounce", {"type": "blocked", "reason": "421 try later"}, "active"),
        ("deferred", {"response": "450 busy"}, "active"),
        ("delivered", {}, "active"),
    ],
)
async def test_which_events_suppress(
    newsletter: Newsletter,
    clock: FixedClock,
    client: httpx.AsyncClient,
    kind: str,
    extra: dict[str, Any],
    expected: str,
) -> None:
    response = await post_events(client, clock, [event(newsletter, kind, SAM, **extra)])
    assert response.status_code == 200
    assert status_of(newsletter, SAM) == expected


async def test_a_complaint_outranks_an_earlier_unsubscribe(
    newsletter: Newsletter, clock: FixedClock, client: httpx.AsyncClient
) -> None:
    await post_events(client, clock, [event(newsletter, "unsubscribe", SAM)])
    await post_events(client, clock, [event(newsletter, "spamreport", SAM)])
    assert status_of(newsletter, SAM) == "complained"
    await post_events(client, clock, [event(newsletter, "unsubscribe", SAM)])
    assert status_of(newsletter, SAM) == "complained"


async def test_a_bounce_mid_campaign_suppresses_the_rows_not_yet_sent(
    newsletter: Newsletter, clock: FixedClock, client: httpx.AsyncClient
) -> None:
    campaign, _ = newsletter.plan(NEXT_SLUG)
    await post_events(client, clock, [event(newsletter, "bounce", PRIYA)])
    assert newsletter.ledger.counts(campaign).suppressed == 1
    assert newsletter.send(NEXT_SLUG).counts.sent == 4


async def test_events_from_before_a_new_opt_in_do_not_suppress(
    newsletter: Newsletter, clock: FixedClock, client: httpx.AsyncClient
) -> None:
    old = event(newsletter, "unsubscribe", SAM)
    with newsletter.sessions.begin() as session:
        sam = session.scalars(select(Subscriber).where(Subscriber.email == SAM)).one()
        sam.consent_at = clock.now
    clock.advance(seconds=30)
    old["timestamp"] -= 60
    await post_events(client, clock, [old])
    assert status_of(newsletter, SAM) == "active"


async def test_events_for_unknown_addresses_are_stored_only(
    newsletter: Newsletter, clock: FixedClock, client: httpx.AsyncClient
) -> None:
    stranger = {
        "email": "someone@else.example",
        "event": "bounce",
        "timestamp": int(clock.now.timestamp()),
        "sg_event_id": "abc",
        "campaign": "test-" + SAMPLE_SLUG,
    }
    junk = [{"event": "bounce"}, "nonsense", {"email": "x@example.com"}]
    response = await post_events(client, clock, [stranger, *junk])
    assert response.json()["stored"] == 1 and response.json()["invalid"] == 3
    with newsletter.sessions() as session:
        row = session.scalars(select(WebhookEvent)).one()
    assert row.subscriber_id is None and row.campaign_id is None


async def test_forgetting_someone_erases_their_events(
    newsletter: Newsletter, clock: FixedClock, client: httpx.AsyncClient
) -> None:
    await post_events(
        client, clock, [event(newsletter, "delivered", SAM), event(newsletter, "open", PRIYA)]
    )
    forget_subscriber(newsletter.sessions, SAM, secret_key="web-secret")
    with newsletter.sessions() as session:
        left = session.scalars(select(WebhookEvent.email)).all()
    assert left == [PRIYA]


async def test_status_json_shows_webhook_counts(
    newsletter: Newsletter, clock: FixedClock, client: httpx.AsyncClient
) -> None:
    await post_events(
        client,
        clock,
        [
            event(newsletter, "delivered", SAM),
            event(newsletter, "open", SAM),
            event(newsletter, "bounce", PRIYA),
        ],
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NEWSLETTER_", "SENDGRID_"))}
    env["NEWSLETTER_SECRET_KEY"] = "web-secret"
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "status", SAMPLE_SLUG, "--json"],
        cwd=newsletter.settings.root,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    status = json.loads(proc.stdout)
    assert status["sent"] == 5
    assert (status["delivered"], status["opened"], status["clicked"], status["bounced"]) == (
        1,
        1,
        0,
        1,
    )


# -- on every database, and under a race ----------------------------------------------------------


async def test_events_on_every_database(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipeline.events import record as events_module

    clock = FixedClock()
    newsletter = make_newsletter(
        tmp_path / "db",
        clock=clock,
        environ={
            "SENDGRID_WEBHOOK_PUBLIC_KEY": public_key_b64(),
            "NEWSLETTER_DATABASE_URL": database_url,
        },
    )
    bounce, opened = event(newsletter, "bounce", SAM), event(newsletter, "open", PRIYA)
    # Another delivery of the same batch stores the open between our check and our insert.
    real = events_module._apply_new
    raced = []

    def racing(session: Any, batch: list[Any], now: Any) -> tuple[int, int]:
        if not raced:
            raced.append(True)
            with newsletter.sessions.begin() as other:
                other.add(
                    WebhookEvent(
                        provider_event_id=opened["sg_event_id"],
                        event="open",
                        email=PRIYA,
                        occurred_at=clock.now,
                        raw=opened,
                        received_at=clock.now,
                    )
                )
        return real(session, batch, now)

    monkeypatch.setattr(events_module, "_apply_new", racing)
    async with web_client(create_app(newsletter)) as client:
        response = await post_events(client, clock, [bounce, opened])
    assert response.status_code == 200
    assert response.json()["stored"] == 1 and response.json()["duplicates"] == 1
    assert status_of(newsletter, SAM) == "bounced"
    assert stored(newsletter) == 2
    newsletter.close()
