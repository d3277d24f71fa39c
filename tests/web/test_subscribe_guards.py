"""What guards joining: the form token (CSRF) on the form and the confirm button, abuse
limits per address and per client, and the scope and expiry of confirm links."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from pipeline.newsletter import Newsletter
from pipeline.web.app import create_app
from tests.helpers import FixedClock
from tests.web.helpers import (
    BASE_URL,
    NEW,
    confirm,
    confirm_link,
    confirm_path,
    csrf_from,
    status_of,
    subscribe,
    unsubscribe_url,
    web_client,
)

pytestmark = pytest.mark.anyio

# -- CSRF --------------------------------------------------------------------------------


async def test_posts_without_a_valid_form_token_are_refused(
    newsletter: Newsletter, clock: FixedClock, app: FastAPI
) -> None:
    async with web_client(app) as victim, web_client(app) as attacker:
        # No cookie at all (a cross-site post: SameSite=Strict keeps the cookie home).
        bare = await victim.post("/subscribe", data={"email": NEW, "csrf_token": "x"})
        assert bare.status_code == 400 and "expired" in bare.text
        # The attacker's own valid token does not match the victim's cookie.
        stolen = csrf_from((await attacker.get("/subscribe")).text)
        await victim.get("/subscribe")
        mixed = await victim.post("/subscribe", data={"email": NEW, "csrf_token": stolen})
        assert mixed.status_code == 400
        # A right token posted from another site's page.
        token = csrf_from((await victim.get("/subscribe")).text)
        foreign = await victim.post(
            "/subscribe",
            data={"email": NEW, "csrf_token": token},
            headers={"Origin": "https://evil.example"},
        )
        assert foreign.status_code == 400
        # An old page (12 hours and more).
        clock.advance(hours=13)
        stale = await victim.post("/subscribe", data={"email": NEW, "csrf_token": token})
        assert stale.status_code == 400
        # The refused form keeps what was typed and offers a fresh token.
        assert f'value="{NEW}"' in stale.text
        fresh = await victim.post(
            "/subscribe",
            data={"email": NEW, "csrf_token": csrf_from(stale.text)},
            headers={"Origin": BASE_URL},
        )
        assert fresh.status_code == 200
    assert status_of(newsletter, NEW) == "pending"


async def test_confirm_needs_the_form_token_too(
    newsletter: Newsletter, client: httpx.AsyncClient
) -> None:
    await subscribe(client, NEW)
    link = confirm_link(newsletter, NEW)
    async with web_client(create_app(newsletter)) as stranger:
        retry = await stranger.post(link, data={"csrf_token": "nope"})
    assert retry.status_code == 200 and "once more" in retry.text
    assert status_of(newsletter, NEW) == "pending"


# -- abuse limits ------------------------------------------------------------------------------


async def test_one_confirmation_email_per_address_per_hour(
    newsletter: Newsletter, clock: FixedClock, client: httpx.AsyncClient
) -> None:
    await subscribe(client, NEW)
    first_link = confirm_link(newsletter, NEW)
    confirm_path(newsletter, NEW).unlink()
    clock.advance(minutes=59)
    again = await subscribe(client, NEW)
    assert "Check your inbox" in again.text
    assert not confirm_path(newsletter, NEW).exists()
    clock.advance(minutes=2)
    await subscribe(client, NEW)
    second_link = confirm_link(newsletter, NEW)
    assert second_link != first_link
    # Only the newest email's link works.
    assert (await client.get(first_link)).status_code == 200  # signature and age are fine...
    old = await confirm(client, first_link)
    assert old.status_code == 400  # ...but it was replaced
    assert status_of(newsletter, NEW) == "pending"
    assert "You're subscribed" in (await confirm(client, second_link)).text


async def test_rate_limit_per_client_address(
    newsletter: Newsletter, clock: FixedClock, app: FastAPI
) -> None:
    async with (
        web_client(app, ip="203.0.113.7") as busy,
        web_client(app, ip="198.51.100.2") as other,
    ):
        for n in range(5):  # the burst ([web] subscribe_burst)
            assert (await subscribe(busy, f"reader{n}@example.com")).status_code == 200
        limited = await subscribe(busy, "reader5@example.com")
        assert limited.status_code == 429
        assert int(limited.headers["Retry-After"]) > 0
        assert status_of(newsletter, "reader5@example.com") == "absent"
        # Someone else is not held up.
        assert (await subscribe(other, "someone@example.com")).status_code == 200
        # Tokens come back over time (20 an hour: one every 3 minutes).
        clock.advance(minutes=3)
        assert (await subscribe(busy, "reader5@example.com")).status_code == 200
        assert (await subscribe(busy, "reader6@example.com")).status_code == 429


# -- token scopes and expiry ---------------------------------------------------------------------


async def test_tokens_only_work_for_their_own_purpose(
    newsletter: Newsletter, client: httpx.AsyncClient
) -> None:
    await subscribe(client, NEW)
    confirm_token = confirm_link(newsletter, NEW).rsplit("/", 1)[1]
    unsubscribe_token = unsubscribe_url(newsletter, "sam.nguyen@example.com").rsplit("/", 1)[1]
    # A confirm token cannot unsubscribe...
    for method in ("GET", "POST"):
        response = await client.request(method, f"/unsubscribe/{confirm_token}")
        assert response.status_code == 400
    # ...and an unsubscribe token cannot confirm.
    assert (await client.get(f"/confirm/{unsubscribe_token}")).status_code == 400
    assert (await client.post(f"/confirm/{unsubscribe_token}")).status_code == 400
    assert status_of(newsletter, "sam.nguyen@example.com") == "active"
    assert status_of(newsletter, NEW) == "pending"
    bad = await client.get("/confirm/not-a-token")
    assert bad.status_code == 400 and "isn't valid" in bad.text


async def test_confirm_links_expire(
    newsletter: Newsletter, clock: FixedClock, client: httpx.AsyncClient
) -> None:
    await subscribe(client, NEW)
    link = confirm_link(newsletter, NEW)
    clock.advance(hours=48, seconds=1)  # [web] confirm_max_age_hours
    expired = await client.get(link)
    assert expired.status_code == 400
    assert "expired" in expired.text
    assert status_of(newsletter, NEW) == "pending"
