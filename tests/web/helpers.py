"""Helpers the public site's tests share: the sample newsletter, an in-process client, the
emails in the outbox and the links in them, and the sign-up form filled in as a browser does.

Tests elsewhere use them too (the webhook, erasure, links, header-injection and browser
tests). The fixtures (``clock``, ``newsletter``, ``app``, ``client``) are in
``tests/web_fixtures.py``, a plugin every test gets.
"""

from __future__ import annotations

import email
import re
from collections.abc import Callable
from email import policy
from email.message import EmailMessage
from pathlib import Path

import httpx
from fastapi import FastAPI

from pipeline.config import load_settings
from pipeline.newsletter import Newsletter
from pipeline.store.models import Subscriber
from pipeline.subscribers import import_csv, iter_subscribers
from pipeline.web.confirm_email import CONFIRM_CAMPAIGN
from tests.helpers import SAMPLE_SLUG, FixedClock, copy_sample_folder

SECRET = "web-secret"
BASE_URL = "http://127.0.0.1:8000"
PREVIOUS_SLUG = "massage-and-mental-health"
NEXT_SLUG = "massage-guns-are-they-worth-it"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_CONFIRM_LINK = re.compile(r"https?://\S+/confirm/[A-Za-z0-9._-]+")

#: Someone not in the sample list, joining through the form.
NEW = "new.reader@example.com"

# -- the newsletter and a client ------------------------------------------------------------


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


# -- the outbox and the links in it ---------------------------------------------------------


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


# -- the database and the pages -------------------------------------------------------------


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


# -- the sign-up form -----------------------------------------------------------------------


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
