"""The owner's "send now" in headless Chromium against a real ``newsletter serve``.

The owner logs in, opens the Schedule page, sends an article now through its
confirmation, and watches the campaign page's counts climb without reloading
it (the SMTP transport sends for real, in the server's background thread, to
an aiosmtpd server on 127.0.0.1; the page's script follows the live stream).
That server holds every DATA until the test has read the page's first count,
so "not all sent yet at load" holds on any machine, however fast, without a
hook in the server. axe-core checks every page on the way, light and dark.
Uses :mod:`tests.web.test_browser`'s Chromium fixtures.
"""

from __future__ import annotations

import os
import re
import subprocess
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from pipeline.accounts import hash_password
from pipeline.store.users import add_user
from pipeline.subscribers.csv_import import import_csv
from tests.fakes.smtp_server import SmtpTestServer
from tests.web.axe import assert_accessible
from tests.web.helpers import PREVIOUS_SLUG, SECRET, make_newsletter
from tests.web.test_browser import (
    ARTIFACTS,
    Site,
    _free_port,
    _newsletter_command,
    _wait_until_serving,
    browser,
    page,
    smtp_settings,
)

if TYPE_CHECKING:
    from playwright.sync_api import Page

__all__ = ["browser", "page"]  # fixtures, used by name

OWNER = "owner@clinic.example"
PASSWORD = "correct horse battery"
#: Enough people, in small batches, that the send takes a few seconds to watch.
AUDIENCE = 1200
BATCH = 20
#: Milliseconds the page may take to show the whole campaign sent (a loaded CI machine).
FINISH_TIMEOUT_MS = 120_000
#: Seconds the SMTP server holds a message for the test at most: past it the
#: message goes through and the test fails on ``gate_timeouts``, never hangs.
GATE_TIMEOUT = 60.0
#: The sender's SMTP timeout outlasts the gate: a held message must wait, not
#: end ``uncertain`` (the default 30 s could be shorter than a slow page load).
SMTP_TIMEOUT = GATE_TIMEOUT + 60


@pytest.fixture(scope="module")
def gate() -> threading.Event:
    """Set by the test once it has read the campaign page's first counts."""
    return threading.Event()


@pytest.fixture(scope="module")
def smtp(gate: threading.Event) -> Iterator[SmtpTestServer]:
    """The mail server the site sends through; every DATA waits for ``gate``."""
    with SmtpTestServer() as server:
        server.hold_data(gate, timeout=GATE_TIMEOUT)
        try:
            yield server
        finally:
            gate.set()  # whatever happened, release held messages so the server stops


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, smtp: SmtpTestServer) -> Iterator[Site]:
    """The sample folder with a thousand more subscribers, served on a free port."""
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    root = tmp_path_factory.mktemp("browser-campaigns") / "clinic"
    edit = smtp_settings(base_url, smtp.host, smtp.port, batch=BATCH, timeout=SMTP_TIMEOUT)
    newsletter = make_newsletter(root, send=False, edit_settings=edit)
    sending = newsletter.settings.sending
    assert (sending.transport, sending.batch_size) == ("smtp", BATCH)
    assert (newsletter.settings.smtp.host, newsletter.settings.smtp.port) == (smtp.host, smtp.port)
    people = root / "many.csv"
    people.write_text(
        "email,first_name\n"
        + "".join(f"reader{n}@example.org,Reader{n}\n" for n in range(AUDIENCE)),
        encoding="utf-8",
    )
    import_csv(newsletter.sessions, people)
    add_user(newsletter.sessions, OWNER, "owner", hash_password(PASSWORD), newsletter.clock())
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NEWSLETTER_", "SENDGRID_"))}
    env["NEWSLETTER_SECRET_KEY"] = SECRET
    log = root / "serve.log"
    command = [*_newsletter_command(), "--config", str(root / "newsletter.toml"), "serve"]
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*command, "--host", "127.0.0.1", "--port", str(port)],
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
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        newsletter.close()


def _shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"admin-{name}.png"), full_page=True)


def _count(page: Page, name: str) -> int:
    return int(page.locator(f'[data-count="{name}"]').first.inner_text().replace(",", ""))


def test_send_now_then_watch_the_counts_climb_without_a_reload(
    site: Site, page: Page, smtp: SmtpTestServer, gate: threading.Event
) -> None:
    base = site.base_url
    audience = AUDIENCE + 5  # the sample list's five, and the readers added
    page.goto(f"{base}/admin")
    page.wait_for_url(f"{base}/admin/login**")
    page.get_by_label("Email address").fill(OWNER)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Password").press("Enter")
    page.wait_for_url(f"{base}/admin")

    page.get_by_role("link", name="Schedule").click()
    page.wait_for_url(f"{base}/admin/schedule")
    assert page.locator("h1").inner_text() == "Schedule"
    assert_accessible(page, context="the Schedule page")
    _shot(page, "schedule")

    title = site.newsletter.article(PREVIOUS_SLUG).title
    page.get_by_role("link", name=re.compile(rf"^Send now\s*:\s*{re.escape(title)}")).click()
    page.wait_for_url(f"{base}/admin/send/{PREVIOUS_SLUG}")
    assert page.locator("h1").inner_text() == f"Send '{title}' to {audience:,} people?"
    assert site.newsletter.ledger.get_campaign(PREVIOUS_SLUG) is None
    assert_accessible(page, context="the send-now confirmation")
    _shot(page, "send-confirm")

    button = page.get_by_role("button", name=f"Yes, send it to {audience:,} people")
    button.focus()
    page.keyboard.press("Enter")  # the keyboard way
    page.wait_for_url(f"{base}/admin/campaigns/{PREVIOUS_SLUG}")
    # A mark on this document: were the page reloaded, the mark would be gone.
    page.evaluate("() => { window.loadedOnce = true; }")
    try:
        # The SMTP server holds every message (on all lanes) until the gate opens,
        # so none can be sent before this read, however fast the machine.
        at_load = _count(page, "sent")
        planned = _count(page, "planned")
    finally:
        gate.set()
    assert planned == audience and at_load < audience
    assert_accessible(page, context="a running campaign's page")
    page.wait_for_function(
        "n => document.querySelector('[data-count=\"sent\"]').textContent.replace(/,/g, '') == n",
        arg=str(audience),
        timeout=FINISH_TIMEOUT_MS,
    )
    assert page.evaluate("() => window.loadedOnce === true"), "the page was reloaded"
    assert _count(page, "pending") == 0
    page.get_by_text("Finished: these numbers are final").wait_for()
    [counts] = site.newsletter.status(PREVIOUS_SLUG)
    assert counts.sent == counts.planned == audience
    assert smtp.gate_timeouts == 0, "the SMTP server gave up waiting for the test's gate"
    # Each person got the email once: one message each, as the server received them.
    per_address = Counter(address.lower() for address in smtp.recipients)
    assert len(smtp.messages) == len(per_address) == audience
    assert set(per_address.values()) == {1}
    assert {f"reader{n}@example.org" for n in range(AUDIENCE)} <= per_address.keys()
    _shot(page, "campaign-finished")

    page.reload()  # the finished page: its chart and no script
    assert page.locator("svg.chart").count() == 1
    assert page.locator("script").count() == 0
    assert_accessible(page, context="a finished campaign's page")
    page.get_by_role("link", name="All campaigns").click()
    page.wait_for_url(f"{base}/admin/campaigns")
    assert page.get_by_role("link", name=title).count() == 2  # in both tables
    assert_accessible(page, context="the Campaigns page")
    _shot(page, "campaigns")
    assert Path(ARTIFACTS / "admin-campaigns.png").exists()
