"""The archive, one-click unsubscribe, headers and error pages, through httpx's ASGI transport.

The helpers at the top are shared by ``test_web_subscribe.py``, ``test_webhooks.py``
and ``test_browser.py``.
"""

from __future__ import annotations

import email
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from email import policy
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from pipeline.config import load_settings
from pipeline.newsletter import Newsletter
from pipeline.store.models import DeliveryStatus, Subscriber
from pipeline.subscribers import import_csv, iter_subscribers
from pipeline.web.app import create_app
from pipeline.web.confirm_email import CONFIRM_CAMPAIGN
from tests.helpers import SAMPLE_SLUG, FixedClock, copy_sample_folder

pytestmark = pytest.mark.anyio

SECRET = "web-secret"
BASE_URL = "http://127.0.0.1:8000"
PREVIOUS_SLUG = "massage-and-mental-health"
NEXT_SLUG = "massage-guns-are-they-worth-it"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_CONFIRM_LINK = re.compile(r"https?://\S+/confirm/[A-Za-z0-9._-]+")

# -- shared helpers ---------------------------------------------------------------------


def make_newsletter(
    root: Path,
    *,
    clock: FixedClock | None = None,
    environ: dict[str, str] | None = None,
    send: bool = True,
    edit_settings: Callable[[str], str] | None = None,
) -> Newsletter:
    """The sample folder with its subscribers imported and (by default) the sample issue sent."""
    config = copy_sample_folder(root)
    if edit_settings is not None:
        config.write_text(edit_settings(config.read_text(encoding="utf-8")), encoding="utf-8")
    settings = load_settings(config, environ={"NEWSLETTER_SECRET_KEY": SECRET, **(environ or {})})
    newsletter = Newsletter(settings, clock=clock or FixedClock())
    import_csv(newsletter.sessions, root / "sample-subscribers.csv")
    if send:
        newsletter.send(SAMPLE_SLUG)
    return newsletter


class _DeliveringTransport(httpx.ASGITransport):
    """After each request the app's confirmation sender makes one pass, as ``serve``'s
    thread does the moment the form wakes it (so a test can read the email at once)."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await super().handle_async_request(request)
        self.app.state.confirmations.step()  # type: ignore[attr-defined]
        return response


def web_client(
    app: FastAPI, *, ip: str = "127.0.0.1", raise_errors: bool = True, deliver: bool = True
) -> httpx.AsyncClient:
    """An httpx client talking to the app in-process, as if from ``ip``.

    ``deliver=False`` leaves queued confirmation emails to the test (``step()``).
    """
    kind = _DeliveringTransport if deliver else httpx.ASGITransport
    transport = kind(app=app, client=(ip, 50123), raise_app_exceptions=raise_errors)
    return httpx.AsyncClient(transport=transport, base_url=BASE_URL)


def read_eml(path: Path) -> EmailMessage:
    """A message file from the outbox."""
    message = email.message_from_bytes(path.read_bytes(), policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def part(message: EmailMessage, subtype: str) -> str:
    """The text of the ``text/<subtype>`` part."""
    found = message.get_body(preferencelist=(subtype,))
    assert found is not None and found.get_content_subtype() == subtype
    return str(found.get_content())


def campaign_eml(newsletter: Newsletter, slug: str, address: str) -> EmailMessage:
    """The message one subscriber got for one campaign."""
    folder = newsletter.settings.outbox_path / slug
    [path] = [p for p in folder.glob("*.eml") if p.name.endswith(f"-{address}.eml")]
    return read_eml(path)


def unsubscribe_url(newsletter: Newsletter, address: str, slug: str = SAMPLE_SLUG) -> str:
    """The List-Unsubscribe URL of the email ``address`` got."""
    return str(campaign_eml(newsletter, slug, address)["List-Unsubscribe"]).strip("<>")


def confirm_path(newsletter: Newsletter, address: str) -> Path:
    """Where the outbox puts the confirmation email for ``address``."""
    return newsletter.settings.outbox_path / CONFIRM_CAMPAIGN / f"test-{address}.eml"


def confirm_link(newsletter: Newsletter, address: str) -> str:
    """The confirm link in the latest confirmation email to ``address``."""
    message = read_eml(confirm_path(newsletter, address))
    match = _CONFIRM_LINK.search(part(message, "plain"))
    assert match is not None
    return match.group(0)


def status_of(newsletter: Newsletter, address: str) -> str:
    """A subscriber's status, or "absent"."""
    return {r.email: str(r.status) for r in iter_subscribers(newsletter.sessions)}.get(
        address, "absent"
    )


def subscriber(newsletter: Newsletter, address: str) -> Subscriber:
    """The subscriber row, detached."""
    from sqlalchemy import select

    with newsletter.sessions() as session:
        found = session.scalar(select(Subscriber).where(Subscriber.email == address))
        assert found is not None
        return found


def csrf_from(html: str) -> str:
    """The CSRF field's value in a page."""
    match = _CSRF.search(html)
    assert match is not None, "no CSRF field in the page"
    return match.group(1)


def assert_security_headers(response: httpx.Response) -> None:
    """Every response carries these."""
    headers = response.headers
    assert "default-src 'none'" in headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert "script-src" not in headers["Content-Security-Policy"]  # no script, anywhere
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Referrer-Policy"] == "same-origin"


# -- fixtures ---------------------------------------------------------------------------


# -- one-click unsubscribe ----------------------------------------------------------------


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
