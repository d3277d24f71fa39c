"""The Campaigns pages: the ledger and event counts, the one script a running campaign's
page may run, and the live stream of counts it reads."""

from __future__ import annotations

import json

import httpx
import pytest
from fastapi import FastAPI

from pipeline.events.model import DeliveryEvent, EventKind
from pipeline.events.record import store_events
from pipeline.newsletter import Newsletter
from pipeline.store.dashboard import campaign_event_counts
from pipeline.web.admin.campaigns import LIVE_SCRIPT, LivePace
from tests.helpers import SAMPLE_SLUG, FixedClock
from tests.web.admin_campaigns.helpers import _active
from tests.web.admin_helpers import OWNER, WRITER, signed_in
from tests.web.helpers import SECRET

pytestmark = pytest.mark.anyio


# -- the Campaigns pages ------------------------------------------------------------------


async def test_campaign_pages_show_ledger_and_event_counts(
    app: FastAPI, newsletter: Newsletter, clock: FixedClock
) -> None:
    newsletter.send(SAMPLE_SLUG)
    campaign = newsletter.ledger.get_campaign(SAMPLE_SLUG)
    assert campaign is not None
    addresses = ["priya.sharma@example.com", "sam.nguyen@example.com"]
    events = [
        DeliveryEvent(
            provider="sendgrid",
            provider_event_id=f"{name}-{address}",
            name=name,
            kind=kind,
            email=address,
            occurred_at=clock(),
            campaign=SAMPLE_SLUG,
            delivery_id=None,
            subscriber_id=None,
            detail=None,
            raw={},
        )
        for address in addresses
        for name, kind in (("delivered", EventKind.DELIVERED), ("open", EventKind.OPENED))
    ]
    events.append(
        DeliveryEvent(
            provider="sendgrid",
            provider_event_id="click-1",
            name="click",
            kind=EventKind.CLICKED,
            email=addresses[0],
            occurred_at=clock(),
            campaign=SAMPLE_SLUG,
            delivery_id=None,
            subscriber_id=None,
            detail=None,
            raw={},
        )
    )
    store_events(newsletter.sessions, events, clock(), secret_key=SECRET)
    counts = campaign_event_counts(newsletter.sessions, campaign.id)
    assert counts == {"delivered": 2, "bounced": 0, "opened": 2, "clicked": 1, "unsubscribed": 0}
    async with signed_in(app, OWNER) as owner:
        listing = await owner.get("/admin/campaigns")
        page = await owner.get(f"/admin/campaigns/{SAMPLE_SLUG}")
    assert listing.status_code == page.status_code == 200
    assert f'href="/admin/campaigns/{SAMPLE_SLUG}"' in listing.text
    assert "Opens and clicks per article" in listing.text
    planned = newsletter.status(SAMPLE_SLUG)[0].planned
    for name, value in (("planned", planned), ("sent", planned), ("opened", 2), ("clicked", 1)):
        assert f'<dd data-count="{name}">{value}</dd>' in page.text, name
    # Finished: no live stream, so no script and the site's strict policy.
    assert "<script" not in page.text
    assert "script-src" not in page.headers["content-security-policy"]
    assert "Emails sent over time" in page.text
    assert (await _missing(app)).status_code == 404


async def _missing(app: FastAPI) -> httpx.Response:
    async with signed_in(app, OWNER) as owner:
        return await owner.get("/admin/campaigns/no-such-article")


async def test_a_running_campaign_page_allows_only_its_own_script(
    app: FastAPI, newsletter: Newsletter
) -> None:
    newsletter.plan(SAMPLE_SLUG)  # planned, nothing sent yet
    async with signed_in(app, OWNER) as owner:
        page = await owner.get(f"/admin/campaigns/{SAMPLE_SLUG}")
    policy = page.headers["content-security-policy"]
    assert f"<script>{LIVE_SCRIPT}</script>" in page.text
    assert (
        "script-src 'sha256-" in policy and "'unsafe-inline'" not in policy.split("script-src")[1]
    )
    assert "connect-src 'self'" in policy and "default-src 'none'" in policy
    assert f'data-src="/admin/campaigns/{SAMPLE_SLUG}/live"' in page.text
    assert f'href="/admin/campaigns/{SAMPLE_SLUG}">Reload</a>' in page.text  # without script


def _events(body: str) -> list[tuple[str, dict[str, object]]]:
    found = []
    for block in body.split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "event" in lines:
            found.append((lines["event"], json.loads(lines["data"])))
    return found


async def test_the_live_stream_yields_counts_until_the_campaign_finishes(
    app: FastAPI, newsletter: Newsletter
) -> None:
    newsletter.plan(SAMPLE_SLUG)
    waits: list[float] = []

    async def campaign_moves_on(seconds: float) -> None:
        # Instead of a second passing, the campaign is sent: the next event must show it.
        waits.append(seconds)
        newsletter.send(SAMPLE_SLUG)

    app.state.live_pace = LivePace(sleep=campaign_moves_on)
    async with signed_in(app, OWNER) as owner:
        answer = await owner.get(f"/admin/campaigns/{SAMPLE_SLUG}/live")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/event-stream")
    events = _events(answer.text)
    assert [name for name, _ in events] == ["counts", "counts", "done"]
    first, last = events[0][1], events[1][1]
    planned = _active(newsletter)
    assert first["pending"] == planned and first["sent"] == 0 and first["finished"] is False
    assert last["sent"] == planned and last["pending"] == 0 and last["finished"] is True
    assert {"delivered", "bounced", "opened", "clicked", "unsubscribed"} <= set(last)
    assert waits == [1.0]  # one second between events


async def test_the_live_stream_is_bounded(app: FastAPI, newsletter: Newsletter) -> None:
    newsletter.plan(SAMPLE_SLUG)  # never sent: the stream would wait for ever

    async def no_time(_seconds: float) -> None:
        return None

    app.state.live_pace = LivePace(sleep=no_time, max_events=4)
    async with signed_in(app, OWNER) as owner:
        answer = await owner.get(f"/admin/campaigns/{SAMPLE_SLUG}/live")
    assert [name for name, _ in _events(answer.text)] == ["counts"] * 4
    assert answer.text.startswith("retry: ")  # the browser reconnects after the bound
    async with signed_in(app, WRITER) as writer:
        assert (await writer.get(f"/admin/campaigns/{SAMPLE_SLUG}/live")).status_code == 403
