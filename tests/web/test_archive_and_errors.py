"""The archive (an issue, the index, the RSS feed), the error pages, and what any public page
may load; through httpx's ASGI transport."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import httpx
import pytest

from pipeline.newsletter import Newsletter
from pipeline.web.app import create_app
from tests.helpers import SAMPLE_SLUG, FixedClock
from tests.web.helpers import (
    BASE_URL,
    NEXT_SLUG,
    PREVIOUS_SLUG,
    assert_security_headers,
    campaign_eml,
    make_newsletter,
    part,
    unsubscribe_url,
    web_client,
)

pytestmark = pytest.mark.anyio

# -- the archive ------------------------------------------------------------------------


async def test_archive_issue_is_the_sent_email_minus_personal_parts(
    newsletter: Newsletter, client: httpx.AsyncClient
) -> None:
    sent = await client.get(f"/archive/{SAMPLE_SLUG}")
    assert sent.status_code == 200
    assert_security_headers(sent)
    assert "Hip Pain" in sent.text and "%%" not in sent.text
    assert "Hi there," in sent.text  # nobody's name in the public copy
    for name in ("Sam", "Priya", "Jordan", "María"):
        assert f"Hi {name}" not in sent.text
    assert re.search(r"/unsubscribe/[A-Za-z0-9]", sent.text) is None  # nobody's token
    # The archive frame: previous/next in the series as they stand today, in the archive.
    assert f'href="{BASE_URL}/archive/{PREVIOUS_SLUG}" rel="prev"' in sent.text
    assert f'href="{BASE_URL}/archive/{NEXT_SLUG}" rel="next"' in sent.text
    assert "Keep reading · Massage and Wellbeing" in sent.text
    assert 'href="/subscribe"' in sent.text
    # The email's own body is intact inside the frame.
    body = sent.text.index("<body")
    assert body < sent.text.index('class="nla"') < sent.text.index("Trigger point therapy", body)
    assert sent.text.index("Trigger point therapy") < sent.text.index("Enjoyed this?")


async def test_every_link_an_email_carries_resolves(
    newsletter: Newsletter, client: httpx.AsyncClient
) -> None:
    html = part(campaign_eml(newsletter, SAMPLE_SLUG, "priya.sharma@example.com"), "html")
    ours = sorted(set(re.findall(rf'href="({re.escape(BASE_URL)}[^"]*)"', html)))
    assert any("/archive/" in link for link in ours)
    assert any("/unsubscribe/" in link for link in ours)
    for link in ours:
        response = await client.get(link.replace("&amp;", "&"))
        assert response.status_code == 200, link
    for neighbour in (PREVIOUS_SLUG, NEXT_SLUG):
        page = await client.get(f"/archive/{neighbour}")
        assert page.status_code == 200
        assert "Coming soon" in page.text and 'href="/subscribe"' in page.text


async def test_archive_lists_sent_issues_newest_first_with_a_feed(
    newsletter: Newsletter, clock: FixedClock, client: httpx.AsyncClient
) -> None:
    clock.advance(days=7)
    newsletter.send(PREVIOUS_SLUG)
    index = await client.get("/archive")
    assert index.status_code == 200
    assert index.text.index(f"/archive/{PREVIOUS_SLUG}") < index.text.index(
        f"/archive/{SAMPLE_SLUG}"
    )
    assert (await client.get("/")).text == index.text
    feed = await client.get("/archive/feed.xml")
    assert feed.status_code == 200
    assert feed.headers["content-type"].startswith("application/rss+xml")
    assert_security_headers(feed)
    channel = ET.fromstring(feed.content).find("channel")
    assert channel is not None
    links = [item.findtext("link") for item in channel.findall("item")]
    assert links == [f"{BASE_URL}/archive/{PREVIOUS_SLUG}", f"{BASE_URL}/archive/{SAMPLE_SLUG}"]
    assert channel.findtext("item/title") == "Massage & Mental Health"
    assert "2026" in (channel.findtext("item/pubDate") or "")
    # Part 1 is sent now: part 2's "previous" no longer says "coming soon"; "next" still does.
    page = await client.get(f"/archive/{SAMPLE_SLUG}")
    assert "Coming soon" not in page.text.split('rel="prev"')[1].split("</p>")[0]
    assert "Coming soon" in page.text.split('rel="next"')[1].split("</p>")[0]


async def test_an_empty_archive(tmp_path: Path) -> None:
    newsletter = make_newsletter(tmp_path / "empty", send=False)
    async with web_client(create_app(newsletter)) as client:
        index = await client.get("/archive")
        assert "No issues have been sent yet" in index.text
        feed = ET.fromstring((await client.get("/archive/feed.xml")).content)
        assert feed.findall("channel/item") == []


# -- error pages and what a page may load -----------------------------------------------


async def test_drafts_and_unknown_slugs_are_not_found(
    newsletter: Newsletter, client: httpx.AsyncClient
) -> None:
    (newsletter.settings.articles_path / "secret.md").write_text(
        "---\ntitle: Secret\nstatus: draft\n---\nBody\n", encoding="utf-8"
    )
    for path in ("/archive/secret", "/archive/no-such-thing", "/no/such/page"):
        response = await client.get(path)
        assert response.status_code == 404, path
        assert "couldn't find" in response.text
        assert "Secret" not in response.text
        assert_security_headers(response)


async def test_wrong_methods_get_a_page_not_json(client: httpx.AsyncClient) -> None:
    response = await client.delete("/archive")
    assert response.status_code == 405
    assert "text/html" in response.headers["content-type"]
    assert_security_headers(response)


async def test_a_crash_shows_a_friendly_500(
    newsletter: Newsletter, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken() -> list[object]:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(newsletter.ledger, "campaigns", broken)
    async with web_client(create_app(newsletter), raise_errors=False) as client:
        response = await client.get("/archive")
    assert response.status_code == 500
    assert "Something went wrong" in response.text
    assert "secret internals" not in response.text and "Traceback" not in response.text


async def test_no_page_loads_anything_from_elsewhere(
    newsletter: Newsletter, client: httpx.AsyncClient
) -> None:
    url = unsubscribe_url(newsletter, "sam.nguyen@example.com")
    for path in ("/archive", "/subscribe", url, f"/archive/{NEXT_SLUG}", "/unsubscribe"):
        html = (await client.get(path)).text
        assert "<script" not in html.lower(), path
        assert not re.search(r'<link[^>]+href="https?://', html), path
        assert 'lang="en"' in html and 'name="viewport"' in html
