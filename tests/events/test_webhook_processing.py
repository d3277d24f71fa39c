"""SendGrid's signed Event Webhook, what verified events do: idempotency, counts, suppression,
erasure and ``status --json``; on every database, and under a race."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from pipeline.newsletter import Newsletter
from pipeline.store.models import Subscriber, WebhookEvent
from pipeline.subscribers import forget_subscriber
from pipeline.web.app import create_app
from tests.events.webhook_helpers import (
    PRIYA,
    SAM,
    counts,
    event,
    post_events,
    public_key_b64,
    stored,
)
from tests.helpers import SAMPLE_SLUG, FixedClock
from tests.web.helpers import NEXT_SLUG, make_newsletter, status_of, web_client

pytestmark = pytest.mark.anyio


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
