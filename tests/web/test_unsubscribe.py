"""One-click unsubscribe (RFC 8058): the link's page, the POST, what it does to running
campaigns, bad tokens, undo, and the help page; through httpx's ASGI transport."""

from __future__ import annotations

import httpx
import pytest

from pipeline.newsletter import Newsletter
from pipeline.store.models import DeliveryStatus
from tests.helpers import SAMPLE_SLUG
from tests.web.helpers import (
    BASE_URL,
    NEXT_SLUG,
    PREVIOUS_SLUG,
    SECRET,
    assert_security_headers,
    confirm_link,
    confirm_path,
    csrf_from,
    status_of,
    unsubscribe_url,
)

pytestmark = pytest.mark.anyio


async def test_one_click_post_unsubscribes_at_once(
    newsletter: Newsletter, client: httpx.AsyncClient
) -> None:
    url = unsubscribe_url(newsletter, "sam.nguyen@example.com")
    assert url.startswith(f"{BASE_URL}/unsubscribe/")
    assert client.cookies == {}  # RFC 8058: no cookie needed
    response = await client.post(
        url, data={"List-Unsubscribe": "One-Click"}, follow_redirects=False
    )
    assert response.status_code == 200
    assert "location" not in response.headers
    assert "You're unsubscribed" in response.text
    assert_security_headers(response)
    assert status_of(newsletter, "sam.nguyen@example.com") == "unsubscribed"
    assert status_of(newsletter, "priya.sharma@example.com") == "active"
    again = await client.post(url, data={"List-Unsubscribe": "One-Click"})
    assert again.status_code == 200  # a repeat is harmless


async def test_one_click_post_as_multipart(
    newsletter: Newsletter, client: httpx.AsyncClient
) -> None:
    url = unsubscribe_url(newsletter, "jordan.lee@example.org")
    response = await client.post(url, files={"List-Unsubscribe": (None, "One-Click")})
    assert response.status_code == 200
    assert response.request.headers["content-type"].startswith("multipart/form-data")
    assert status_of(newsletter, "jordan.lee@example.org") == "unsubscribed"


async def test_get_only_shows_a_button(newsletter: Newsletter, client: httpx.AsyncClient) -> None:
    url = unsubscribe_url(newsletter, "priya.sharma@example.com")
    response = await client.get(url)
    assert response.status_code == 200
    assert '<form method="post"' in response.text
    assert 'name="List-Unsubscribe" value="One-Click"' in response.text
    assert "p***@example.com" in response.text  # recognisable, not spelled out
    assert "priya.sharma@example.com" not in response.text
    assert status_of(newsletter, "priya.sharma@example.com") == "active"
    assert_security_headers(response)
    assert response.headers["Cache-Control"] == "no-store"
    assert "noindex" in response.headers["X-Robots-Tag"]


async def test_unsubscribing_suppresses_rows_of_a_running_campaign(
    newsletter: Newsletter, client: httpx.AsyncClient
) -> None:
    # A campaign planned (audience snapshotted) but not yet sent to anyone.
    campaign, _ = newsletter.plan(NEXT_SLUG)
    url = unsubscribe_url(newsletter, "maria.garcia@example.net")
    assert (await client.post(url, data={"List-Unsubscribe": "One-Click"})).status_code == 200
    counts = newsletter.ledger.counts(campaign)
    assert (counts.pending, counts.suppressed) == (4, 1)
    report = newsletter.send(NEXT_SLUG)
    assert (report.counts.sent, report.counts.suppressed) == (4, 1)
    sent_to = {p.name for p in (newsletter.settings.outbox_path / NEXT_SLUG).glob("*.eml")}
    assert len(sent_to) == 4
    assert not any("maria.garcia" in name for name in sent_to)


async def test_running_campaign_rows_in_flight_are_left_alone(
    newsletter: Newsletter, client: httpx.AsyncClient
) -> None:
    # Only rows not yet handed over can be held back; sent ones stay sent.
    url = unsubscribe_url(newsletter, "sam.nguyen@example.com")
    await client.post(url)
    campaign = newsletter.ledger.get_campaign(SAMPLE_SLUG)
    assert campaign is not None
    counts = newsletter.ledger.counts(campaign)
    assert counts.sent == 5 and counts.suppressed == 0
    assert DeliveryStatus.SENT.value == "sent"


async def test_the_next_send_skips_an_unsubscribed_address(
    newsletter: Newsletter, client: httpx.AsyncClient
) -> None:
    url = unsubscribe_url(newsletter, "alex.taylor@example.com")
    await client.post(url, content=b"List-Unsubscribe=One-Click")
    report = newsletter.send(PREVIOUS_SLUG)
    assert report.counts.planned == 4
    names = [p.name for p in (newsletter.settings.outbox_path / PREVIOUS_SLUG).glob("*.eml")]
    assert not any("alex.taylor" in name for name in names)


async def test_bad_and_tampered_tokens_get_a_friendly_400(
    newsletter: Newsletter, client: httpx.AsyncClient
) -> None:
    good = unsubscribe_url(newsletter, "sam.nguyen@example.com").rsplit("/", 1)[1]
    payload, stamp, signature = good.split(".")
    tampered = f"{payload}.{stamp}.{signature[:-2]}{'AA' if signature[-2:] != 'AA' else 'BB'}"
    for token in ("WzEsImFiYyJd.tampered.sig", tampered, "x" * 300, "%3Cscript%3E"):
        for method in ("GET", "POST"):
            response = await client.request(method, f"/unsubscribe/{token}")
            assert response.status_code == 400, (method, token)
            assert "isn't valid" in response.text
            assert "Traceback" not in response.text and "itsdangerous" not in response.text
            assert "<script>" not in response.text
            assert_security_headers(response)
    assert status_of(newsletter, "sam.nguyen@example.com") == "active"


async def test_an_unsubscribe_link_for_an_erased_person_changes_nothing(
    newsletter: Newsletter, client: httpx.AsyncClient
) -> None:
    from pipeline.subscribers import forget_subscriber

    url = unsubscribe_url(newsletter, "sam.nguyen@example.com")
    forget_subscriber(newsletter.sessions, "sam.nguyen@example.com", secret_key=SECRET)
    response = await client.post(url, data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    assert "Resubscribe" not in response.text  # nothing on record to undo
    assert status_of(newsletter, "sam.nguyen@example.com") == "absent"


async def test_undo_sends_a_confirmation_and_nothing_else(
    newsletter: Newsletter, client: httpx.AsyncClient
) -> None:
    address = "sam.nguyen@example.com"
    url = unsubscribe_url(newsletter, address)
    await client.get(url)  # the page with the button sets the form cookie
    done = await client.post(url, data={"List-Unsubscribe": "One-Click"})
    assert "Resubscribe" in done.text
    # Without the form's token (another site posting), nothing happens.
    forged = await client.post(f"{url}/resubscribe", data={"csrf_token": "forged"})
    assert forged.status_code == 400 and "expired" in forged.text
    assert not confirm_path(newsletter, address).exists()
    undo = await client.post(f"{url}/resubscribe", data={"csrf_token": csrf_from(done.text)})
    assert undo.status_code == 200 and "Check your inbox" in undo.text
    assert status_of(newsletter, address) == "unsubscribed"  # not until they confirm
    page = await client.get(confirm_link(newsletter, address))
    confirmed = await client.post(
        confirm_link(newsletter, address), data={"csrf_token": csrf_from(page.text)}
    )
    assert "You're subscribed" in confirmed.text
    assert status_of(newsletter, address) == "active"


async def test_an_unsubscribe_page_for_someone_already_gone(
    newsletter: Newsletter, client: httpx.AsyncClient
) -> None:
    url = unsubscribe_url(newsletter, "sam.nguyen@example.com")
    await client.post(url)
    page = await client.get(url)
    assert page.status_code == 200
    assert "You're unsubscribed" in page.text and "Resubscribe" in page.text


async def test_unsubscribe_help_page(client: httpx.AsyncClient) -> None:
    response = await client.get("/unsubscribe")
    assert response.status_code == 200
    assert "personal to you" in response.text
