"""End to end in headless Chromium against a real ``newsletter serve`` on 127.0.0.1.

Debian's ``/usr/bin/chromium``, driven by Playwright (its driver ships in the
wheel; no browser is downloaded). Without Chromium or Playwright these tests
skip, except under ``REQUIRE_ALL=1`` (CI), where that is a failure.

Screenshots of the sample email and the archive pages at 375 px and 1280 px,
light and dark, go to ``test-artifacts/`` for a person to look at.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from pipeline.newsletter import Newsletter
from tests.databases import unavailable
from tests.helpers import ROOT, SAMPLE_SLUG
from tests.web.helpers import (
    NEXT_SLUG,
    PREVIOUS_SLUG,
    SECRET,
    campaign_eml,
    confirm_link,
    confirm_path,
    make_newsletter,
    part,
    status_of,
    unsubscribe_url,
)

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

CHROMIUM = Path("/usr/bin/chromium")
# Headless as root on a machine with no outside network: no sandbox, no GPU, and
# none of Chromium's own background connections.
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = ROOT / "test-artifacts"
WIDTHS = (375, 1280)
SCHEMES = ("light", "dark")
STARTUP_TIMEOUT = 30.0
PAGE_TIMEOUT_MS = 10_000


@dataclass
class Site:
    """A running ``newsletter serve`` and the folder it serves."""

    base_url: str
    newsletter: Newsletter
    process: subprocess.Popen[bytes]
    log: Path


def smtp_settings(
    base_url: str, host: str, port: int, *, batch: int, timeout: float
) -> Callable[[str], str]:
    """An edit of the sample's newsletter.toml: this base_url, SMTP to host:port, batch size."""

    def edit(text: str) -> str:
        text = re.sub(r'(?m)^base_url = ".*"$', f'base_url = "{base_url}"', text)
        text = re.sub(r"(?m)^batch_size = \d+$", f"batch_size = {batch}", text)
        text = text.replace('transport = "outbox"', 'transport = "smtp"')
        text = re.sub(r'(?m)^host = ".*"$', f'host = "{host}"', text)
        text = re.sub(r"(?m)^port = \d+$", f"port = {port}", text)
        return re.sub(r'(?m)^security = ".*"$', f'security = "none"\ntimeout = {timeout}', text)

    return edit


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _newsletter_command() -> list[str]:
    script = Path(sys.executable).parent / "newsletter"
    return [str(script)] if script.exists() else [sys.executable, "-m", "pipeline.cli"]


def _wait_until_serving(site: Site) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if site.process.poll() is not None:
            pytest.fail(f"newsletter serve exited: {site.log.read_text(errors='replace')[-2000:]}")
        try:
            if httpx.get(f"{site.base_url}/archive", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    pytest.fail(f"newsletter serve did not answer within {STARTUP_TIMEOUT:.0f} s")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """The sample folder, its sample issue sent, served on a free port of 127.0.0.1."""
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    root = tmp_path_factory.mktemp("browser") / "clinic"
    newsletter = make_newsletter(
        root,
        edit_settings=lambda text: re.sub(
            r'(?m)^base_url = ".*"$', f'base_url = "{base_url}"', text
        ),
    )
    assert newsletter.settings.web.base_url == base_url
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NEWSLETTER_", "SENDGRID_"))}
    env["NEWSLETTER_SECRET_KEY"] = SECRET
    log = root / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                *_newsletter_command(),
                "--config",
                str(root / "newsletter.toml"),
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    running = Site(base_url=base_url, newsletter=newsletter, process=process, log=log)
    try:
        _wait_until_serving(running)
        yield running
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        newsletter.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless."""
    if not CHROMIUM.exists():
        unavailable(f"{CHROMIUM} is not installed (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("playwright is not installed (pip install -e '.[test]')")
        raise AssertionError("unreachable") from None
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(PAGE_TIMEOUT_MS)
    try:
        yield context.new_page()
    finally:
        context.close()


def _heading(page: Page) -> str:
    return page.locator("h1").first.inner_text()


# -- journeys -----------------------------------------------------------------------------


def test_subscribe_then_confirm_from_the_outbox(site: Site, page: Page) -> None:
    address = "browser.reader@example.com"
    page.goto(f"{site.base_url}/subscribe")
    page.get_by_label("Email address").fill(address)
    page.get_by_label("First name").fill("Robin")
    page.get_by_label("Email address").press("Enter")  # the keyboard way
    page.wait_for_url(f"{site.base_url}/subscribe")
    assert _heading(page) == "Check your inbox"
    # serve's background sender sends it moments later (the form woke it).
    deadline = time.monotonic() + 20
    while not confirm_path(site.newsletter, address).exists():
        assert time.monotonic() < deadline, "no confirmation email within 20 s"
        time.sleep(0.05)
    assert status_of(site.newsletter, address) == "pending"

    link = confirm_link(site.newsletter, address)
    assert link.startswith(f"{site.base_url}/confirm/")
    page.goto(link)
    assert status_of(site.newsletter, address) == "pending"  # opening the link is not consent
    page.get_by_role("button", name="Confirm my subscription").click()
    page.wait_for_load_state()
    assert _heading(page) == "You're subscribed"
    assert status_of(site.newsletter, address) == "active"


def test_unsubscribe_with_the_button_from_the_sample_email(site: Site, page: Page) -> None:
    address = "priya.sharma@example.com"
    html = part(campaign_eml(site.newsletter, SAMPLE_SLUG, address), "html")
    link = unsubscribe_url(site.newsletter, address)
    assert f'href="{link}"' in html  # the visible link is the header's link
    page.goto(link)
    assert status_of(site.newsletter, address) == "active"
    page.get_by_role("button", name="Unsubscribe").click()
    page.wait_for_load_state()
    assert _heading(page) == "You're unsubscribed"
    assert status_of(site.newsletter, address) == "unsubscribed"
    # The undo only sends a confirmation email.
    page.get_by_role("button", name="Resubscribe").click()
    page.wait_for_load_state()
    assert _heading(page) == "Check your inbox"
    assert status_of(site.newsletter, address) == "unsubscribed"


def test_one_click_post_like_a_mail_provider(site: Site) -> None:
    address = "jordan.lee@example.org"
    response = httpx.post(
        unsubscribe_url(site.newsletter, address),
        data={"List-Unsubscribe": "One-Click"},
        follow_redirects=False,
        timeout=10,
    )
    assert response.status_code == 200
    assert status_of(site.newsletter, address) == "unsubscribed"


def test_walk_the_series_in_the_archive(site: Site, page: Page) -> None:
    site.newsletter.send(PREVIOUS_SLUG)
    page.goto(f"{site.base_url}/archive")
    page.get_by_role("link", name="Hip Pain & How Massage Therapy Helps").click()
    page.wait_for_url(f"{site.base_url}/archive/{SAMPLE_SLUG}")

    page.get_by_role("link", name=re.compile(r"^Next: Massage Guns")).first.click()
    page.wait_for_url(f"{site.base_url}/archive/{NEXT_SLUG}")
    assert "Massage Guns" in _heading(page)
    assert "Coming soon" in page.content()

    page.go_back()
    page.wait_for_url(f"{site.base_url}/archive/{SAMPLE_SLUG}")
    page.get_by_role(
        "link", name=re.compile(r"^←\s+Previous: Massage & Mental Health")
    ).last.click()
    page.wait_for_url(f"{site.base_url}/archive/{PREVIOUS_SLUG}")
    assert "Massage & Mental Health" in page.title()
    page.get_by_role("link", name=re.compile(r"^Next: Hip Pain")).last.click()
    page.wait_for_url(f"{site.base_url}/archive/{SAMPLE_SLUG}")


# -- how it looks -----------------------------------------------------------------------------


def _check_layout(page: Page, name: str, width: int, scheme: str) -> list[str]:
    """Screenshot the page; at 375 px nothing may overflow. Returns its links."""
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}-{width}-{scheme}.png"), full_page=True)
    if width == 375:
        overflow = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
        assert overflow[0] <= overflow[1], f"{name} overflows at {width} px: {overflow}"
    links: list[str] = page.eval_on_selector_all("a[href]", "els => els.map(e => e.href)")
    return links


def _assert_links_resolve(site: Site, links: set[str]) -> None:
    """Every link into our site answers 200; links elsewhere (the clinic's site) are not fetched."""
    ours = sorted(link for link in links if link.startswith(site.base_url))
    assert ours
    with httpx.Client(timeout=10, follow_redirects=True) as client:
        for link in ours:
            assert client.get(link).status_code == 200, link


def test_screenshots_fit_and_every_link_resolves(site: Site, browser: Browser) -> None:
    address = "maria.garcia@example.net"
    email_html = part(campaign_eml(site.newsletter, SAMPLE_SLUG, address), "html")
    pages = {
        "archive": f"{site.base_url}/archive/{SAMPLE_SLUG}",
        "archive-index": f"{site.base_url}/archive",
        "subscribe": f"{site.base_url}/subscribe",
        "unsubscribe": unsubscribe_url(site.newsletter, address),
    }
    links: set[str] = set()
    for scheme in SCHEMES:
        for width in WIDTHS:
            context = browser.new_context(
                viewport={"width": width, "height": 900},
                color_scheme=scheme,  # type: ignore[arg-type]
            )
            context.set_default_timeout(PAGE_TIMEOUT_MS)
            try:
                page = context.new_page()
                page.set_content(email_html, wait_until="load")
                links.update(_check_layout(page, "email", width, scheme))
                for name, url in pages.items():
                    page.goto(url)
                    links.update(_check_layout(page, name, width, scheme))
            finally:
                context.close()
    assert any("/unsubscribe/" in link for link in links)
    assert any(link.endswith(f"/archive/{SAMPLE_SLUG}") for link in links)
    _assert_links_resolve(site, links)
    assert status_of(site.newsletter, address) == "active"  # looking is not unsubscribing
    assert {p.name for p in ARTIFACTS.glob("email-*.png")} >= {
        f"email-{w}-{s}.png" for w in WIDTHS for s in SCHEMES
    }
