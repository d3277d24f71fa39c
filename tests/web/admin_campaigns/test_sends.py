"""Sends started from the dashboard, run for real in its background thread: send now,
retry the failed rows, resend to the uncertain."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from sqlalchemy import select, update

from pipeline.newsletter import Newsletter
from pipeline.store.models import Delivery, DeliveryStatus, Subscriber
from tests.helpers import SAMPLE_SLUG
from tests.web.admin_campaigns.helpers import _active, _text
from tests.web.admin_helpers import OWNER, signed_in
from tests.web.helpers import csrf_from

pytestmark = pytest.mark.anyio

#: How long a test waits for the dashboard's background send (it takes well under a second).
SEND_WAIT = 60.0


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


# -- retry and resend, from a campaign's page ---------------------------------------------


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
