"""Shared by the webhook tests (and the erasure, header-injection and hardening tests).

A throwaway P-256 key stands in for SendGrid's: ``signed_headers`` signs a body
exactly as SendGrid does, ``event`` builds one event as SendGrid posts it, and
``post_events`` signs and posts a batch.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import func, select

from pipeline.events import event_counts
from pipeline.newsletter import Newsletter
from pipeline.store.models import Delivery, Subscriber, WebhookEvent
from pipeline.web.webhooks import SIGNATURE_HEADER, TIMESTAMP_HEADER
from tests.helpers import SAMPLE_SLUG, FixedClock
from tests.web.helpers import make_newsletter

SAM = "sam.nguyen@example.com"
PRIYA = "priya.sharma@example.com"

_KEY = ec.generate_private_key(ec.SECP256R1())


def public_key_b64(key: ec.EllipticCurvePrivateKey = _KEY) -> str:
    """The key as SendGrid's settings page shows it: base64 of the DER public key."""
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode("ascii")


def webhook_newsletter(
    root: Path, clock: FixedClock, edit_settings: Callable[[str], str] | None = None
) -> Newsletter:
    """The sample newsletter (tests/web/helpers.py) with SendGrid's webhook public key set."""
    return make_newsletter(
        root,
        clock=clock,
        environ={"SENDGRID_WEBHOOK_PUBLIC_KEY": public_key_b64()},
        edit_settings=edit_settings,
    )


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
