"""The dashboard's Schedule and Campaigns pages (issue 15), through the app in-process.

Every send here is real: the sample folder's outbox transport, the ledger, the
runner in the dashboard's background thread. Roles and CSRF for every route
are also covered by tests/web/test_admin.py's route table.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from html import unescape
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, update

from pipeline.cli.schedule import schedule_listing
from pipeline.events.model import DeliveryEvent, EventKind
from pipeline.events.record import store_events
from pipeline.newsletter import Newsletter
from pipeline.store.dashboard import (
    Engagement,
    SentPoint,
    campaign_event_counts,
    engagement_by_article,
    sends_over_time,
)
from pipeline.store.holds import HoldStore
from pipeline.store.models import Delivery, DeliveryStatus, ScheduledSendStatus, Subscriber
from pipeline.store.oneoffs import OneOffStore
from pipeline.store.scheduler_state import SchedulerStateStore
from pipeline.web.admin.campaigns import LIVE_SCRIPT, LivePace
from pipeline.web.admin.charts import engagement_chart, sends_chart
from pipeline.web.app import create_app
from tests.helpers import SAMPLE_SLUG, FixedClock
from tests.web.test_admin import OWNER, WRITER, signed_in, staffed_newsletter
from tests.web.test_web import NEXT_SLUG, SECRET, csrf_from

pytestmark = pytest.mark.anyio

#: How long a test waits for the dashboard's background send (it takes well under a second).
SEND_WAIT = 60.0
SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture
def newsletter(tmp_path: Path, clock: FixedClock) -> Newsletter:
    """The sample folder with nothing sent yet, an owner and a writer."""
    return staffed_newsletter(tmp_path / "clinic", clock)


@pytest.fixture
def app(newsletter: Newsletter) -> FastAPI:
    return create_app(newsletter)


def _active(newsletter: Newsletter) -> int:
    with newsletter.sessions() as session:
        return len(session.scalars(select(Subscriber).where(Subscriber.status == "active")).all())


def _text(page: httpx.Response) -> str:
    """The page's text with entities undone and whitespace folded, as a reader sees it."""
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", page.text)).split())


async def _token(client: httpx.AsyncClient, path: str = "/admin/schedule") -> str:
    return csrf_from((await client.get(path)).text)


def _wait_for_send(app: FastAPI, slug: str) -> None:
    assert app.state.background_sends.join(slug, SEND_WAIT), "the background send did not end"


def _set_rows(
    newsletter: Newsletter, slug: str, rows: dict[str, tuple[str, str | None, str | None]]
) -> None:
    """Put some of a campaign's rows in a state (address -> status, failure kind, error)."""
    campaign = newsletter.ledger.get_campaign(slug)
    assert campaign is not None
    with newsletter.sessions.begin() as session:
        for address, (status, kind, error) in rows.items():
            person = session.scalar(select(Subscriber.id).where(Subscriber.email == address))
            session.execute(
                update(Delivery)
                .where(Delivery.campaign_id == campaign.id, Delivery.subscriber_id == person)
                .values(status=DeliveryStatus(status), failure_kind=kind, error=error)
            )


# -- the Schedule page --------------------------------------------------------------------


async def test_the_schedule_page_shows_the_next_five_dates_in_the_clinic_timezone(
    app: FastAPI, newsletter: Newsletter
) -> None:
    async with signed_in(app, OWNER) as owner:
        page = await owner.get("/admin/schedule")
    assert page.status_code == 200
    listing = schedule_listing(newsletter, 5)
    zone = newsletter.settings.schedule.tz
    shown = re.findall(r'<time datetime="([^"]+)">', page.text)
    expected = [f.at.astimezone(zone).isoformat() for f in listing.firings]
    assert len(expected) == 5 and all(iso in shown for iso in expected)
    assert all(iso.endswith("+11:00") for iso in expected)  # Sydney in summer, not UTC
    assert "Australia/Sydney" in page.text and "0 9 * * tue" in page.text
    assert 'action="/admin/schedule/pause"' in page.text
    assert "<script" not in page.text


async def test_a_writer_gets_a_clear_403_on_every_owner_page(app: FastAPI) -> None:
    async with signed_in(app, WRITER) as writer:
        for path in ("/admin/schedule", "/admin/campaigns", f"/admin/send/{SAMPLE_SLUG}"):
            page = await writer.get(path)
            assert page.status_code == 403 and "Only an owner can do that" in page.text
        queue = await writer.get("/admin")
        assert 'href="/admin/schedule"' not in queue.text
        assert 'href="/admin/campaigns"' not in queue.text


async def test_one_off_sends_are_added_refused_and_removed_as_the_cli_does(
    app: FastAPI, newsletter: Newsletter
) -> None:
    store = OneOffStore(newsletter.sessions)
    async with signed_in(app, OWNER) as owner:
        token = await _token(owner)
        # The clock is 2026-11-25 20:00 in Sydney: a time before it is refused.
        past = await owner.post(
            "/admin/schedule/one-offs",
            data={"slug": NEXT_SLUG, "at": "2026-11-25T08:00", "csrf_token": token},
        )
        assert past.status_code == 400 and "is in the past" in _text(past)
        assert 'aria-invalid="true"' in past.text and store.pending() == []
        no_csrf = await owner.post(
            "/admin/schedule/one-offs", data={"slug": NEXT_SLUG, "at": "2026-12-02T10:30"}
        )
        assert no_csrf.status_code == 403 and store.pending() == []
        added = await owner.post(
            "/admin/schedule/one-offs",
            data={"slug": NEXT_SLUG, "at": "2026-12-02T10:30", "csrf_token": token},
        )
        assert added.status_code == 303 and added.headers["location"] == "/admin/schedule"
        [one] = store.pending()
        assert one.slug == NEXT_SLUG
        assert one.at == datetime(2026, 12, 1, 23, 30, tzinfo=UTC)  # 10:30 in Sydney
        page = await owner.get("/admin/schedule")
        assert 'datetime="2026-12-02T10:30:00+11:00"' in page.text
        removed = await owner.post(
            "/admin/schedule/one-offs/cancel", data={"slug": NEXT_SLUG, "csrf_token": token}
        )
        assert removed.status_code == 303 and store.pending() == []
        assert store.all()[0].status is ScheduledSendStatus.CANCELLED
        again = await owner.post(
            "/admin/schedule/one-offs/cancel", data={"slug": NEXT_SLUG, "csrf_token": token}
        )
        assert again.status_code == 409 and "no pending one-off send" in _text(again)


async def test_held_firings_are_listed_and_released(
    app: FastAPI, newsletter: Newsletter, clock: FixedClock
) -> None:
    holds = HoldStore(newsletter.sessions)
    firing = schedule_listing(newsletter, 1).firings[0]
    assert holds.hold(firing.at, firing.slug, clock())
    async with signed_in(app, OWNER) as owner:
        page = await owner.get("/admin/schedule")
        assert "Held sends" in page.text and '<span class="badge">held</span>' in page.text
        key = re.search(r'name="firing_at" value="([^"]+)"', page.text)
        assert key is not None
        token = csrf_from(page.text)
        released = await owner.post(
            "/admin/schedule/holds/release",
            data={"firing_at": key.group(1), "csrf_token": token},
        )
        assert released.status_code == 303 and holds.in_force() == []
        again = await owner.post(
            "/admin/schedule/holds/release",
            data={"firing_at": key.group(1), "csrf_token": token},
        )
        assert again.status_code == 409


async def test_pause_and_resume_from_the_schedule_page_come_back_to_it(
    app: FastAPI, newsletter: Newsletter, clock: FixedClock
) -> None:
    state = SchedulerStateStore(newsletter.sessions)
    holds = HoldStore(newsletter.sessions)
    async with signed_in(app, OWNER) as owner:
        token = await _token(owner)
        paused = await owner.post(
            "/admin/schedule/pause", data={"csrf_token": token, "back": "/admin/schedule"}
        )
        assert paused.headers["location"] == "/admin/schedule" and state.paused()
        page = await owner.get("/admin/schedule")
        assert "The schedule is paused" in page.text
        assert holds.hold(clock.now + timedelta(days=6), None, clock())
        # As `schedule resume`: unpaused, and held firings released.
        resumed = await owner.post(
            "/admin/schedule/resume",
            data={"csrf_token": token, "back": "https://evil.example/"},
        )
        assert resumed.headers["location"] == "/admin"  # never another site
        assert not state.paused() and holds.in_force() == []


# -- send now -----------------------------------------------------------------------------


async def test_send_now_names_the_audience_then_sends_in_the_background(
    app: FastAPI, newsletter: Newsletter
) -> None:
    audience = _active(newsletter)
    assert audience > 1
    title = newsletter.article(SAMPLE_SLUG).title
    async with signed_in(app, OWNER) as owner:
        schedule = await owner.get("/admin/schedule")
        assert f'href="/admin/send/{SAMPLE_SLUG}"' in schedule.text
        confirm = await owner.get(f"/admin/send/{SAMPLE_SLUG}")
        assert confirm.status_code == 200
        assert f"Send '{title}' to {audience} people?" in _text(confirm)
        assert newsletter.ledger.get_campaign(SAMPLE_SLUG) is None  # asking sends nothing
        refused = await owner.post(f"/admin/send/{SAMPLE_SLUG}", data={"csrf_token": "forged"})
        assert refused.status_code == 403 and newsletter.ledger.get_campaign(SAMPLE_SLUG) is None
        sent = await owner.post(
            f"/admin/send/{SAMPLE_SLUG}", data={"csrf_token": csrf_from(confirm.text)}
        )
        assert sent.status_code == 303
        assert sent.headers["location"] == f"/admin/campaigns/{SAMPLE_SLUG}"
        _wait_for_send(app, SAMPLE_SLUG)
        [counts] = newsletter.status(SAMPLE_SLUG)
        assert counts.planned == counts.sent == audience
        outbox = newsletter.settings.outbox_path / SAMPLE_SLUG
        assert len(list(outbox.glob("*.eml"))) == audience
        # Once sent, it cannot be sent again from here.
        again = await owner.get(f"/admin/send/{SAMPLE_SLUG}")
        assert "can't be sent now" in _text(again) and 'action="/admin/send/' not in again.text
        repost = await owner.post(
            f"/admin/send/{SAMPLE_SLUG}", data={"csrf_token": csrf_from(again.text)}
        )
        assert repost.status_code == 409
        assert len(list(outbox.glob("*.eml"))) == audience
        assert (await owner.get("/admin/send/no-such-article")).status_code == 404


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


async def test_retry_these_sends_again_only_failures_that_may_be_fixed(
    app: FastAPI, newsletter: Newsletter
) -> None:
    newsletter.send(SAMPLE_SLUG)
    _set_rows(
        newsletter,
        SAMPLE_SLUG,
        {
            "priya.sharma@example.com": ("failed", "batch", "400 Bad Request"),
            "sam.nguyen@example.com": ("failed", "retries", "503 after 5 tries"),
            "maria.garcia@example.net": ("failed", "recipient", "550 <maria.garcia@example.net>"),
        },
    )
    async with signed_in(app, OWNER) as owner:
        page = await owner.get(f"/admin/campaigns/{SAMPLE_SLUG}")
        text = _text(page)
        assert "Why rows failed or are in doubt" in text
        assert "550 <address>" in text and "No: refused for this person" in text
        assert "Retry these 2 failed rows" in text
        no_csrf = await owner.post(f"/admin/campaigns/{SAMPLE_SLUG}/retry", data={})
        assert no_csrf.status_code == 403
        assert newsletter.status(SAMPLE_SLUG)[0].failed == 3
        retry = await owner.post(
            f"/admin/campaigns/{SAMPLE_SLUG}/retry", data={"csrf_token": csrf_from(page.text)}
        )
        assert retry.status_code == 303 and "started=retry" in retry.headers["location"]
        _wait_for_send(app, SAMPLE_SLUG)
        after = await owner.get(retry.headers["location"])
    [counts] = newsletter.status(SAMPLE_SLUG)
    assert counts.failed == 1 and counts.sent == counts.planned - 1  # the refusal stays
    assert "Sending the failed rows again" in after.text
    assert "Retry these" not in after.text  # nothing left that a retry could fix


async def test_resend_to_the_uncertain_asks_first_and_warns_of_duplicates(
    app: FastAPI, newsletter: Newsletter
) -> None:
    newsletter.send(SAMPLE_SLUG)
    _set_rows(newsletter, SAMPLE_SLUG, {"sam.nguyen@example.com": ("uncertain", None, None)})
    path = f"/admin/campaigns/{SAMPLE_SLUG}/resend-uncertain"
    async with signed_in(app, OWNER) as owner:
        page = await owner.get(f"/admin/campaigns/{SAMPLE_SLUG}")
        assert f'href="{path}"' in page.text and "<form" in page.text
        assert f'action="{path}"' not in page.text  # only behind the confirmation
        confirm = await owner.get(path)
        text = _text(confirm)
        assert "again to the 1 person in doubt?" in text and "may get this email twice" in text
        assert newsletter.status(SAMPLE_SLUG)[0].uncertain == 1  # asking resends nothing
        forged = await owner.post(path, data={"csrf_token": "forged"})
        assert forged.status_code == 403
        resent = await owner.post(path, data={"csrf_token": csrf_from(confirm.text)})
        assert resent.status_code == 303
        _wait_for_send(app, SAMPLE_SLUG)
    [counts] = newsletter.status(SAMPLE_SLUG)
    assert counts.uncertain == 0 and counts.sent == counts.planned


# -- the charts ---------------------------------------------------------------------------


def _parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg" and root.get("role") == "img"
    assert root.find(f"{SVG}title") is not None and root.find(f"{SVG}desc") is not None
    return root


def _texts(root: ET.Element) -> list[str]:
    return [t.text or "" for t in root.iter(f"{SVG}text")]


def test_the_sends_chart_is_svg_with_its_numbers_as_text() -> None:
    start = datetime(2026, 12, 1, 22, 0, tzinfo=UTC)
    points = [SentPoint(start + timedelta(seconds=10 * i), n) for i, n in enumerate((0, 400, 1234))]
    chart = sends_chart("sends", points, 1500, FixedClock().now.tzinfo or UTC)
    assert chart is not None
    root = _parse(str(chart.svg))
    texts = _texts(root)
    assert {"400", "1,234", "planned: 1,500"} <= set(texts)
    desc = root.find(f"{SVG}desc")
    assert desc is not None and "1,234 of 1,500 sent" in (desc.text or "")
    assert chart.rows[-1] == ("2026-12-01 22:00:20", "1,234")
    assert sends_chart("sends", [], 10, UTC) is None


def test_the_engagement_chart_tells_series_apart_without_colour() -> None:
    chart = engagement_chart(
        "engagement",
        [
            Engagement("a", "Hip <Pain> & Massage", 120, 30),
            Engagement("b", "Massage guns", 80, 0),
        ],
    )
    assert chart is not None
    root = _parse(str(chart.svg))  # the title's < and & are escaped: it still parses
    texts = _texts(root)
    assert {"120 opened", "30 clicked", "80 opened", "0 clicked"} <= set(texts)
    assert "opened (solid)" in texts and "clicked (hatched)" in texts
    assert root.find(f"{SVG}defs/{SVG}pattern") is not None  # the hatching
    clicked = [r for r in root.iter(f"{SVG}rect") if r.get("class") == "bar-clicked"]
    assert clicked and all((r.get("fill") or "").startswith("url(#") for r in clicked)
    assert chart.rows == (("Hip <Pain> & Massage", "120", "30"), ("Massage guns", "80", "0"))


def test_chart_figures_come_from_the_ledger_and_the_events(newsletter: Newsletter) -> None:
    newsletter.send(SAMPLE_SLUG)
    campaign = newsletter.ledger.get_campaign(SAMPLE_SLUG)
    assert campaign is not None
    points = sends_over_time(newsletter.sessions, campaign.id)
    assert points and points[-1].sent == newsletter.status(SAMPLE_SLUG)[0].sent
    [article] = engagement_by_article(newsletter.sessions)
    assert (article.slug, article.opened, article.clicked) == (SAMPLE_SLUG, 0, 0)
