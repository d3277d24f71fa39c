"""Every URL the newsletter hands out comes from pipeline/links.py.

First each function's own output; then the places a reader meets a URL (the sent
email in the outbox, the archive page and its feed, the confirm email) carry
exactly what those functions return for the configured ``[web] base_url``. The
base here has a path and differs from the default, so a caller that still built
its own URL (from the Host header, or a hard-coded root) would show.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import httpx
import pytest

from pipeline import links
from pipeline.content.series import article_url
from pipeline.newsletter import Newsletter
from pipeline.web.app import create_app
from tests.helpers import SAMPLE_SLUG, FixedClock
from tests.web.helpers import (
    NEXT_SLUG,
    PREVIOUS_SLUG,
    campaign_eml,
    confirm_path,
    csrf_from,
    make_newsletter,
    part,
    read_eml,
    subscriber,
    web_client,
)

pytestmark = pytest.mark.anyio

BASE = "https://news.example-clinic.com/letters"
READER = "priya.sharma@example.com"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def newsletter(tmp_path: Path) -> Newsletter:
    """The sample folder served at BASE, its sample issue sent."""
    return make_newsletter(
        tmp_path / "clinic",
        clock=FixedClock(),
        edit_settings=lambda text: text.replace(
            'base_url = "http://127.0.0.1:8000"', f'base_url = "{BASE}/"'
        ),
    )


# -- the functions ------------------------------------------------------------------


def test_each_url_function() -> None:
    assert links.archive_index_url(BASE) == f"{BASE}/archive"
    assert links.archive_feed_url(BASE) == f"{BASE}/archive/feed.xml"
    assert links.archive_url(BASE, "hip-pain") == f"{BASE}/archive/hip-pain"
    assert links.unsubscribe_page_url(BASE) == f"{BASE}/unsubscribe"
    assert links.unsubscribe_url(BASE, "7.abc.sig") == f"{BASE}/unsubscribe/7.abc.sig"
    assert links.confirm_url(BASE, "tok") == f"{BASE}/confirm/tok"
    # A trailing slash on the base never doubles.
    assert links.archive_url(f"{BASE}/", "hip-pain") == f"{BASE}/archive/hip-pain"
    assert links.unsubscribe_url(f"{BASE}/", "t") == f"{BASE}/unsubscribe/t"


def test_neighbour_link_rule() -> None:
    blog = "https://clinic.example.com/blog/hip-pain"
    assert links.neighbour_url(BASE, "hip-pain", blog) == blog
    assert links.neighbour_url(BASE, "hip-pain", None) == f"{BASE}/archive/hip-pain"
    assert links.neighbour_url(BASE, "hip-pain", "") == f"{BASE}/archive/hip-pain"


def test_series_navigation_uses_the_rule(newsletter: Newsletter) -> None:
    article = newsletter.article(PREVIOUS_SLUG)
    assert article_url(article, BASE) == links.neighbour_url(
        BASE, article.slug, article.canonical_url
    )


# -- where readers meet them ----------------------------------------------------------


def test_the_sent_email_carries_links_urls(newsletter: Newsletter) -> None:
    assert newsletter.settings.web.base_url == BASE  # config strips the slash
    message = campaign_eml(newsletter, SAMPLE_SLUG, READER)
    person = subscriber(newsletter, READER)
    token = newsletter.signer.issue("unsubscribe", person.id, READER)
    unsubscribe = links.unsubscribe_url(BASE, token)
    assert str(message["List-Unsubscribe"]).strip("<>") == unsubscribe
    html = part(message, "html")
    assert f'href="{unsubscribe}"' in html
    assert f'href="{links.archive_url(BASE, SAMPLE_SLUG)}"' in html
    # Previous and next: the neighbours' canonical_url, else their archive page.
    for slug in (PREVIOUS_SLUG, NEXT_SLUG):
        neighbour = newsletter.article(slug)
        assert f'href="{links.neighbour_url(BASE, slug, neighbour.canonical_url)}"' in html
    # Every absolute link of ours in the email is one of those.
    ours = set(re.findall(rf'href="({re.escape(BASE)}[^"]*)"', html))
    expected = {
        unsubscribe,
        links.archive_url(BASE, SAMPLE_SLUG),
        *(links.archive_url(BASE, s) for s in (PREVIOUS_SLUG, NEXT_SLUG)),
    }
    assert ours <= expected and unsubscribe in ours


async def test_the_archive_page_and_feed_carry_links_urls(newsletter: Newsletter) -> None:
    async with web_client(create_app(newsletter)) as client:
        page = await client.get(f"/archive/{SAMPLE_SLUG}")
        feed = await client.get("/archive/feed.xml")
    assert page.status_code == 200
    assert f'href="{links.archive_url(BASE, PREVIOUS_SLUG)}" rel="prev"' in page.text
    assert f'href="{links.archive_url(BASE, NEXT_SLUG)}" rel="next"' in page.text
    # The public copy links the unsubscribe page, never someone's token.
    assert f'href="{links.unsubscribe_page_url(BASE)}"' in page.text
    channel = ET.fromstring(feed.content).find("channel")
    assert channel is not None
    assert channel.findtext("link") == links.archive_index_url(BASE)
    self_link = channel.find("{http://www.w3.org/2005/Atom}link")
    assert self_link is not None and self_link.get("href") == links.archive_feed_url(BASE)
    assert [i.findtext("link") for i in channel.findall("item")] == [
        links.archive_url(BASE, SAMPLE_SLUG)
    ]


async def test_the_confirm_email_carries_links_urls(newsletter: Newsletter) -> None:
    address = "new.reader@example.com"
    async with web_client(create_app(newsletter)) as client:
        # The form's cookie is Secure and its Origin must be base_url's: post from there.
        client.base_url = httpx.URL("https://news.example-clinic.com")
        form = await client.get("/subscribe")
        data = {"email": address, "first_name": "", "csrf_token": csrf_from(form.text)}
        answer = await client.post("/subscribe", data=data)
    assert answer.status_code == 200
    person = subscriber(newsletter, address)
    confirm = links.confirm_url(BASE, newsletter.signer.issue("confirm", person.id, address))
    unsubscribe = links.unsubscribe_url(
        BASE, newsletter.signer.issue("unsubscribe", person.id, address)
    )
    message = read_eml(confirm_path(newsletter, address))
    text = part(message, "plain")
    assert confirm in text
    assert str(message["List-Unsubscribe"]).strip("<>") == unsubscribe
