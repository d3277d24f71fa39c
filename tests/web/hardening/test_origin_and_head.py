"""The sign-up form is accepted only from ``base_url``'s origin, and HEAD answers like GET
without a body (and changes nothing)."""

from __future__ import annotations

import httpx
import pytest

from pipeline.newsletter import Newsletter
from tests.web.hardening.helpers import SAM
from tests.web.helpers import BASE_URL, NEW, csrf_from, status_of, unsubscribe_url

pytestmark = pytest.mark.anyio

# -- 8. CSRF origin, HEAD ---------------------------------------------------------------------


async def test_the_form_is_accepted_only_from_base_url_s_origin(
    newsletter: Newsletter, client: httpx.AsyncClient
) -> None:
    refused = {
        "Origin: null": {"Origin": "null"},
        "an origin from our own Host header": {
            "Host": "attacker.example",
            "Origin": "http://attacker.example",
        },
        "a foreign Referer": {"Referer": "https://evil.example/page"},
    }
    for name, headers in refused.items():
        form = await client.get("/subscribe")
        data = {"email": NEW, "csrf_token": csrf_from(form.text)}
        assert (await client.post("/subscribe", data=data, headers=headers)).status_code == 400, (
            name
        )
    assert status_of(newsletter, NEW) == "absent"
    for headers in ({"Origin": BASE_URL}, {"Referer": f"{BASE_URL}/subscribe"}):
        form = await client.get("/subscribe")
        data = {"email": NEW, "csrf_token": csrf_from(form.text)}
        assert (await client.post("/subscribe", data=data, headers=headers)).status_code == 200
    assert status_of(newsletter, NEW) == "pending"


async def test_head_answers_like_get_without_a_body(
    newsletter: Newsletter, client: httpx.AsyncClient
) -> None:
    for path in ("/archive", "/subscribe", "/archive/feed.xml", unsubscribe_url(newsletter, SAM)):
        get = await client.get(path)
        head = await client.head(path)
        assert head.status_code == get.status_code == 200, path
        assert head.content == b""
        assert head.headers["content-type"] == get.headers["content-type"]
        assert head.headers["content-length"] == get.headers["content-length"]
    assert (await client.head("/no/such/page")).status_code == 404
    assert status_of(newsletter, SAM) == "active"  # HEAD on an unsubscribe link changes nothing
