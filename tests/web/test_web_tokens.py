"""Link tokens through the web pages (issue 12, points 6 and 7).

Only the spelling a token was issued as opens a page; unsubscribe links sent
before the address digest was keyed still unsubscribe, older confirm links do
not; and a page reached by a token alone shows the address masked.
"""

from __future__ import annotations

import httpx
import pytest

from pipeline.newsletter import Newsletter
from tests.test_tokens import legacy_confirm_token, legacy_unsubscribe_token, respellings
from tests.web.helpers import csrf_from, status_of, subscriber, unsubscribe_url

pytestmark = pytest.mark.anyio

SAM = "sam.nguyen@example.com"
SAM_MASKED = "s***@example.com"


async def test_other_spellings_of_an_unsubscribe_link_get_400(
    newsletter: Newsletter, client: httpx.AsyncClient
) -> None:
    url = unsubscribe_url(newsletter, SAM)
    base, _, token = url.rpartition("/")
    assert (await client.get(url)).status_code == 200  # the link as sent works
    for other in respellings(token):
        for method in ("GET", "POST"):
            response = await client.request(method, f"{base}/{other}")
            assert response.status_code == 400, (method, other)
            assert "isn't valid" in response.text
    assert status_of(newsletter, SAM) == "active"


async def test_other_spellings_of_a_confirm_link_get_400(
    newsletter: Newsletter, client: httpx.AsyncClient
) -> None:
    token = newsletter.signer.issue("confirm", subscriber(newsletter, SAM).id, SAM)
    assert (await client.get(f"/confirm/{token}")).status_code == 200
    for other in respellings(token):
        page = await client.get(f"/confirm/{other}")
        assert page.status_code == 400, other
        pressed = await client.post(f"/confirm/{other}", data={"csrf_token": "x"})
        assert pressed.status_code == 400, other


async def test_an_unsubscribe_link_sent_before_digests_were_keyed_still_unsubscribes(
    newsletter: Newsletter, client: httpx.AsyncClient
) -> None:
    old = legacy_unsubscribe_token(subscriber(newsletter, SAM).id, SAM, secret="web-secret")
    page = await client.get(f"/unsubscribe/{old}")
    assert page.status_code == 200 and SAM_MASKED in page.text
    done = await client.post(f"/unsubscribe/{old}", content=b"List-Unsubscribe=One-Click")
    assert done.status_code == 200 and "You're unsubscribed" in done.text
    assert status_of(newsletter, SAM) == "unsubscribed"


async def test_a_confirm_link_with_the_unkeyed_digest_gets_400(
    newsletter: Newsletter, client: httpx.AsyncClient
) -> None:
    sam = subscriber(newsletter, SAM)
    old = legacy_confirm_token(sam.id, SAM, newsletter.clock(), secret="web-secret")
    assert (await client.get(f"/confirm/{old}")).status_code == 400
    pressed = await client.post(f"/confirm/{old}", data={"csrf_token": "x"})
    assert pressed.status_code == 400


async def test_the_resubscribe_page_shows_the_address_masked(
    newsletter: Newsletter, client: httpx.AsyncClient
) -> None:
    url = unsubscribe_url(newsletter, SAM)
    await client.get(url)  # sets the form cookie
    done = await client.post(url, data={"List-Unsubscribe": "One-Click"})
    assert SAM not in done.text
    undo = await client.post(f"{url}/resubscribe", data={"csrf_token": csrf_from(done.text)})
    assert undo.status_code == 200 and "Check your inbox" in undo.text
    assert SAM_MASKED in undo.text
    assert SAM not in undo.text and "sam.nguyen" not in undo.text
