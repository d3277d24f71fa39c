"""Joining: the sign-up form, double opt-in, CSRF, abuse limits and token scopes."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from pipeline.newsletter import Newsletter
from pipeline.store import confirmations
from pipeline.web.app import create_app
from tests.fakes.sendgrid_server import (
    TEST_API_KEY,
    Drop,
    Reply,
    SendGridServer,
    sendgrid_server_fixture,  # noqa: F401 - provides the sendgrid_server fixture
)
from tests.helpers import FixedClock
from tests.web.test_web import (
    BASE_URL,
    confirm_link,
    confirm_path,
    csrf_from,
    make_newsletter,
    part,
    read_eml,
    status_of,
    subscriber,
    unsubscribe_url,
    web_client,
)

pytestmark = pytest.mark.anyio

NEW = "new.reader@example.com"


async def subscribe(
    client: httpx.AsyncClient, address: str, first_name: str = "", **extra: str
) -> httpx.Response:
    """Fill in and send the form, as a browser does (GET, then POST with its token)."""
    form = await client.get("/subscribe")
    data = {"email": address, "first_name": first_name, "csrf_token": csrf_from(form.text)}
    return await client.post("/subscribe", data={**data, **extra})


async def confirm(client: httpx.AsyncClient, link: str) -> httpx.Response:
    """Open the emailed link and press the button."""
    page = await client.get(link)
    assert page.status_code == 200, page.text
    return await client.post(link, data={"csrf_token": csrf_from(page.text)})


# -- the happy path ---------------------------------------------------------------------


async def test_the_form_is_accessible_and_sets_a_strict_cookie(client: httpx.AsyncClient) -> None:
    response = await client.get("/subscribe")
    assert response.status_code == 200
    html = response.text
    for field in ("email", "first_name"):
        assert f'<label for="{field}">' in html and f'id="{field}"' in html
    assert 'autocomplete="email"' in html
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/" in cookie
    assert response.headers["Cache-Control"] == "no-store"


async def test_double_opt_in_end_to_end(
    newsletter: Newsletter, clock: FixedClock, client: httpx.AsyncClient
) -> None:
    answer = await subscribe(client, " New.Reader@Example.com ", "Robin")
    assert answer.status_code == 200
    assert "Check your inbox" in answer.text
    assert status_of(newsletter, NEW) == "pending"
    assert newsletter.ledger.count_audience() == 5  # pending people get no campaign

    message = read_eml(confirm_path(newsletter, NEW))
    assert message["To"] == NEW
    assert "confirm" in str(message["Subject"]).lower()
    assert str(message["List-Unsubscribe"]).startswith(f"<{BASE_URL}/unsubscribe/")
    link = confirm_link(newsletter, NEW)
    assert link.startswith(f"{BASE_URL}/confirm/")
    assert link in part(message, "html")

    # Opening the link (as a mail scanner would) changes nothing.
    page = await client.get(link)
    assert "Confirm my subscription" in page.text
    assert status_of(newsletter, NEW) == "pending"

    clock.advance(minutes=5)
    done = await client.post(link, data={"csrf_token": csrf_from(page.text)})
    assert done.status_code == 200 and "You're subscribed" in done.text
    assert status_of(newsletter, NEW) == "active"
    record = subscriber(newsletter, NEW)
    assert record.first_name == "Robin"
    assert record.consent_at == clock.now
    assert record.consent_ip == "127.0.0.1"
    assert record.consent_source and "double opt-in" in record.consent_source
    assert record.confirm_sent_at is None
    # Pressing again is harmless.
    again = await confirm(client, link)
    assert again.status_code == 200 and "You're subscribed" in again.text


async def test_confirmation_email_goes_through_sendgrid_valid_against_the_schema(
    tmp_path: Path, sendgrid_server: SendGridServer
) -> None:
    newsletter = make_newsletter(
        tmp_path / "sg",
        send=False,
        environ={"SENDGRID_API_KEY": TEST_API_KEY, "SENDGRID_API_HOST": sendgrid_server.url},
        edit_settings=lambda text: text.replace('transport = "outbox"', 'transport = "sendgrid"'),
    )
    async with web_client(create_app(newsletter)) as client:
        answer = await subscribe(client, NEW)
    assert "Check your inbox" in answer.text
    [request] = sendgrid_server.accepted()
    assert request.errors == ()
    [delivery] = sendgrid_server.deliveries()
    assert delivery.email == NEW
    assert delivery.custom_args["campaign"] == "confirm-subscription"
    assert delivery.custom_args["subscriber_id"] == str(subscriber(newsletter, NEW).id)


def sendgrid_newsletter(root: Path, server: SendGridServer, clock: FixedClock) -> Newsletter:
    return make_newsletter(
        root,
        clock=clock,
        send=False,
        environ={"SENDGRID_API_KEY": TEST_API_KEY, "SENDGRID_API_HOST": server.url},
        edit_settings=lambda text: text.replace('transport = "outbox"', 'transport = "sendgrid"'),
    )


async def test_a_failed_confirmation_email_is_retried_in_the_background(
    tmp_path: Path,
    clock: FixedClock,
    sendgrid_server: SendGridServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    newsletter = sendgrid_newsletter(tmp_path / "sg", sendgrid_server, clock)
    app = create_app(newsletter)
    sender = app.state.confirmations
    sendgrid_server.script(Reply.error(401, "bad key"), Drop())
    async with web_client(app, deliver=False) as client:
        answer = await subscribe(client, NEW)
    # The person sees what everyone sees: the mail service's trouble is ours to handle.
    assert answer.status_code == 200 and "Check your inbox" in answer.text
    with caplog.at_level(logging.WARNING, logger="pipeline.web.confirm_sender"):
        assert sender.step() == 1  # refused with 401
        assert sender.step() == 0  # not due again yet
        clock.advance(minutes=1)
        assert sender.step() == 1  # the connection drops: a transport error too
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2 and all("retrying at" in w for w in warnings)
    assert TEST_API_KEY not in " ".join(warnings)
    assert sendgrid_server.accepted() == [] and status_of(newsletter, NEW) == "pending"
    # The service is back: the next retry (5 minutes after the 2nd failure) sends it.
    clock.advance(minutes=4)
    assert sender.step() == 0
    clock.advance(minutes=1)
    assert sender.step() == 1
    [delivery] = sendgrid_server.deliveries()
    assert delivery.email == NEW
    assert confirmations.pending(newsletter.sessions) == []
    assert subscriber(newsletter, NEW).confirm_sent_at is not None


async def test_an_email_that_never_leaves_is_given_up_after_a_day(
    tmp_path: Path, clock: FixedClock, sendgrid_server: SendGridServer
) -> None:
    newsletter = sendgrid_newsletter(tmp_path / "sg", sendgrid_server, clock)
    app = create_app(newsletter)
    sendgrid_server.always(Reply.error(401, "bad key"))
    async with web_client(app, deliver=False) as client:
        await subscribe(client, NEW)
        for _ in range(30):
            app.state.confirmations.step()
            clock.advance(hours=1)
        assert confirmations.pending(newsletter.sessions) == []
        # Given up, the reservation is released: asking again works at once.
        assert subscriber(newsletter, NEW).confirm_sent_at is None
        sendgrid_server.always(None)
        await subscribe(client, NEW)
    app.state.confirmations.step()
    assert [d.email for d in sendgrid_server.deliveries()] == [NEW]


# -- what the answer never tells -------------------------------------------------------------


async def test_the_answer_does_not_reveal_who_is_subscribed(
    newsletter: Newsletter, client: httpx.AsyncClient
) -> None:
    known = await subscribe(client, "sam.nguyen@example.com")
    unknown = await subscribe(client, NEW)
    assert known.status_code == unknown.status_code == 200
    strip = re.compile(r"<strong>[^<]*</strong>")
    assert strip.sub("", known.text) == strip.sub("", unknown.text)
    assert not confirm_path(newsletter, "sam.nguyen@example.com").exists()  # active: no email
    assert subscriber(newsletter, "sam.nguyen@example.com").first_name == "Sam"


async def test_user_input_is_never_echoed_unescaped(client: httpx.AsyncClient) -> None:
    hostile = '"><script>alert(1)</script>'
    bad = await subscribe(client, f"{hostile}@example.com", hostile)
    assert bad.status_code == 400
    assert "valid email address" in bad.text
    assert "<script>alert(1)" not in bad.text
    assert "&lt;script&gt;alert(1)" in bad.text
    odd_name = await subscribe(client, NEW, hostile)
    assert odd_name.status_code == 200 and "<script>alert(1)" not in odd_name.text


async def test_form_validation(newsletter: Newsletter, client: httpx.AsyncClient) -> None:
    for address in ("", "not-an-address", "a@b", "x" * 400 + "@example.com"):
        response = await subscribe(client, address)
        assert response.status_code == 400, address
        assert 'aria-invalid="true"' in response.text
    too_long = await subscribe(client, NEW, "R" * 101)
    assert too_long.status_code == 400
    assert re.search(r'id="first_name"[^>]*aria-invalid="true"', too_long.text)
    assert not re.search(r'id="email"[^>]*aria-invalid="true"', too_long.text)
    assert status_of(newsletter, NEW) == "absent"


async def test_the_honeypot_catches_bots_quietly(
    newsletter: Newsletter, client: httpx.AsyncClient
) -> None:
    response = await subscribe(client, NEW, website="http://spam.example")
    assert response.status_code == 200 and "Check your inbox" in response.text
    assert status_of(newsletter, NEW) == "absent"
    assert not confirm_path(newsletter, NEW).exists()


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


# -- people who left ------------------------------------------------------------------------------


async def test_coming_back_after_leaving_needs_confirmation(
    newsletter: Newsletter, clock: FixedClock, client: httpx.AsyncClient
) -> None:
    address = "priya.sharma@example.com"
    await client.post(unsubscribe_url(newsletter, address))
    clock.advance(minutes=1)
    await subscribe(client, address, "P")
    assert status_of(newsletter, address) == "unsubscribed"
    assert subscriber(newsletter, address).first_name == "Priya"  # untouched until consent
    link = confirm_link(newsletter, address)
    assert "You're subscribed" in (await confirm(client, link)).text
    assert status_of(newsletter, address) == "active"
    # Leaving again makes that (still unexpired) link useless.
    clock.advance(minutes=1)
    await client.post(unsubscribe_url(newsletter, address))
    assert (await confirm(client, link)).status_code == 400
    assert status_of(newsletter, address) == "unsubscribed"


async def test_saying_not_me_from_the_confirmation_email(
    newsletter: Newsletter, client: httpx.AsyncClient
) -> None:
    await subscribe(client, NEW)
    message = read_eml(confirm_path(newsletter, NEW))
    leave = str(message["List-Unsubscribe"]).strip("<>")
    assert (await client.post(leave, data={"List-Unsubscribe": "One-Click"})).status_code == 200
    assert status_of(newsletter, NEW) == "unsubscribed"
    assert (await confirm(client, confirm_link(newsletter, NEW))).status_code == 400
    assert status_of(newsletter, NEW) == "unsubscribed"


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
