"""The Schedule page: the next dates, one-off sends, held firings, pause and resume;
and that a writer gets a 403 on every owner page."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI

from pipeline.cli.schedule import schedule_listing
from pipeline.newsletter import Newsletter
from pipeline.store.holds import HoldStore
from pipeline.store.models import ScheduledSendStatus
from pipeline.store.oneoffs import OneOffStore
from pipeline.store.scheduler_state import SchedulerStateStore
from tests.helpers import SAMPLE_SLUG, FixedClock
from tests.web.admin_campaigns.helpers import _text
from tests.web.admin_helpers import OWNER, WRITER, signed_in
from tests.web.helpers import NEXT_SLUG, csrf_from

pytestmark = pytest.mark.anyio


async def _token(client: httpx.AsyncClient, path: str = "/admin/schedule") -> str:
    return csrf_from((await client.get(path)).text)


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
