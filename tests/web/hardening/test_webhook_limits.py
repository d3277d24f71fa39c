"""The signed SendGrid webhook under load and abuse: an unsigned post is refused before its
body is read, bodies in flight are bounded, a signed but unparsable body is a 400, and a
large batch is recorded in short transactions."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event as sa_event

from pipeline.newsletter import Newsletter
from pipeline.web.app import create_app
from pipeline.web.webhooks import MAX_IN_FLIGHT
from tests.events.webhook_helpers import signed_headers, webhook_newsletter
from tests.helpers import FixedClock
from tests.web.helpers import web_client

pytestmark = pytest.mark.anyio

# -- 4. limits: the webhook before its body -------------------------------------------------


@pytest.fixture
def signed_newsletter(tmp_path: Path, clock: FixedClock) -> Newsletter:
    return webhook_newsletter(tmp_path / "signed", clock)


async def test_an_unsigned_webhook_is_refused_before_its_body_is_read(
    signed_newsletter: Newsletter,
) -> None:
    consumed = 0

    async def big_body() -> AsyncIterator[bytes]:
        nonlocal consumed
        for _ in range(64):  # 4 MB, streamed
            consumed += 1
            yield b" " * 65536

    async with web_client(create_app(signed_newsletter)) as client:
        response = await client.post("/webhooks/sendgrid", content=big_body())
    assert response.status_code == 403
    assert consumed == 0


async def test_webhook_bodies_in_flight_are_bounded(
    signed_newsletter: Newsletter, clock: FixedClock
) -> None:
    body = b"[]"
    headers = signed_headers(body, int(clock.now.timestamp()))
    release = asyncio.Event()
    started = 0
    all_started = asyncio.Event()

    async def slow_body() -> AsyncIterator[bytes]:
        nonlocal started
        yield body[:1]
        started += 1
        if started == MAX_IN_FLIGHT:
            all_started.set()
        await release.wait()
        yield body[1:]

    async with web_client(create_app(signed_newsletter)) as client:
        held = [
            asyncio.create_task(
                client.post("/webhooks/sendgrid", content=slow_body(), headers=headers)
            )
            for _ in range(MAX_IN_FLIGHT)
        ]
        await asyncio.wait_for(all_started.wait(), timeout=10)
        turned_away = await asyncio.wait_for(
            client.post("/webhooks/sendgrid", content=body, headers=headers), timeout=10
        )
        release.set()
        finished = await asyncio.wait_for(asyncio.gather(*held), timeout=10)
        assert turned_away.status_code == 503 and "Retry-After" in turned_away.headers
        assert [r.status_code for r in finished] == [200] * MAX_IN_FLIGHT
        # Room again once they are done.
        again = await client.post("/webhooks/sendgrid", content=body, headers=headers)
        assert again.status_code == 200


# -- 5. signed but unparsable bodies; large batches in chunks -----------------------------


async def test_every_unparsable_signed_body_is_400(
    signed_newsletter: Newsletter, clock: FixedClock
) -> None:
    stamp = int(clock.now.timestamp())
    bodies = {
        "nested brackets": b"[" * 100_000 + b"]" * 100_000,
        "not UTF-8": b'[{"event": "bounce", "email": "\xff@example.com"}]',
        "an object": b'{"event": "bounce"}',
        "a number": b"42",
    }
    async with web_client(create_app(signed_newsletter), raise_errors=False) as client:
        for name, body in bodies.items():
            response = await client.post(
                "/webhooks/sendgrid", content=body, headers=signed_headers(body, stamp)
            )
            assert response.status_code == 400, name


async def test_a_large_batch_is_recorded_in_short_transactions(
    signed_newsletter: Newsletter, clock: FixedClock
) -> None:
    stamp = int(clock.now.timestamp())
    items = [
        {"email": f"r{n}@example.com", "event": "delivered", "sg_event_id": uuid.uuid4().hex}
        for n in range(20_000)
    ]
    body = json.dumps(items).encode()
    commits = 0

    def count(_connection: Any) -> None:
        nonlocal commits
        commits += 1

    engine = signed_newsletter.engine
    sa_event.listen(engine, "commit", count)
    try:
        async with web_client(create_app(signed_newsletter)) as client:
            response = await client.post(
                "/webhooks/sendgrid", content=body, headers=signed_headers(body, stamp)
            )
    finally:
        sa_event.remove(engine, "commit", count)
    assert response.status_code == 200 and response.json()["stored"] == 20_000
    # 500 events per transaction: the write lock is never held for the whole batch.
    assert commits >= 40
