"""Joining through the sign-up form: the form, double opt-in end to end, what the answer
never tells, validation and the honeypot, and people who left coming back."""

from __future__ import annotations

import re

import httpx
import pytest

from pipeline.newsletter import Newsletter
from tests.helpers import FixedClock
from tests.web.helpers import (
    BASE_URL,
    NEW,
    confirm,
    confirm_link,
    confirm_path,
    csrf_from,
    part,
    read_eml,
    status_of,
    subscribe,
    subscriber,
    unsubscribe_url,
)

pytestmark = pytest.mark.anyio

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
