"""The owner's whole flow in headless Chromium, on what ``make run`` starts.

``newsletter demo`` (what ``make run`` runs) is started as a subprocess in a copy
of the sample folder: it imports the sample subscribers, sends the sample issue,
prints the one-time setup link (no account exists yet), then runs the scheduler
and the web app. The test reads that link from its output and, only in the
browser, does what issue 15 asks of an owner: create the first account, upload
a CSV of a few hundred people, write an article and save it, preview it at phone
width, schedule it as a one-off send, watch its campaign page count up to the
end without a reload, and open one person's page to see what they received.
axe-core checks every page on the way (light and dark); screenshots go to
``test-artifacts/``.

The copy sends through SMTP to an aiosmtpd server in this process. While the
one-off goes out, that server holds every DATA until the test has read the
campaign page's first counts, so "fewer sent than planned" is seen on any
machine, however fast, with no hook in the product. Every wait is bounded, and
the subprocess is stopped in the fixture's teardown whatever happens.
"""

from __future__ import annotations

import os
import re
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from pipeline.config import load_settings
from pipeline.newsletter import Newsletter
from tests.fakes.smtp_server import SmtpTestServer
from tests.helpers import copy_sample_folder
from tests.web.axe import assert_accessible
from tests.web.helpers import SECRET, status_of
from tests.web.test_browser import (
    ARTIFACTS,
    _free_port,
    _newsletter_command,
    browser,
    smtp_settings,
)

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

__all__ = ["browser"]  # a fixture, used by name

OWNER = "owner@clinic.example"
PASSWORD = "correct horse battery"
#: The uploaded list: a few hundred new people (the sample list has five more).
UPLOADED = 300
SAMPLE_PEOPLE = 5
BATCH = 50
TITLE = "Desk Shoulders: Easing Tension at Work"
#: Seconds for `newsletter demo` to import, send the sample issue and print its link.
STARTUP_TIMEOUT = 90.0
#: Seconds for the scheduler's welcome pass to have welcomed everyone uploaded.
WELCOMES_TIMEOUT = 120.0
#: Seconds from setting the one-off to its campaign existing: the form takes whole
#: minutes (see _one_off_time), then the scheduler polls every few seconds.
FIRING_TIMEOUT = 150.0
#: Milliseconds the page may take to show the whole campaign sent (a loaded machine).
FINISH_TIMEOUT_MS = 120_000
#: Seconds the SMTP server holds a message at most: past it the message goes on and
#: the test fails on ``gate_timeouts``, never hangs.
GATE_TIMEOUT = 120.0
#: The sender's SMTP timeout outlasts the gate, so a held message waits rather than
#: ending ``uncertain``.
SMTP_TIMEOUT = GATE_TIMEOUT + 60
#: A loaded machine (the full suite beside this test) can be slow to answer a page.
PAGE_TIMEOUT_MS = 30_000
SETUP_LINK = re.compile(r"Create the owner's \(link works once, for an hour\): (\S+)")


@dataclass
class Demo:
    """A running ``newsletter demo``, its folder, and the link it printed."""

    base_url: str
    config: Path
    process: subprocess.Popen[bytes]
    log: Path
    setup_link: str = ""

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


@pytest.fixture
def gate() -> threading.Event:
    """Open (set) until the test closes it just before the one-off send."""
    opened = threading.Event()
    opened.set()
    return opened


@pytest.fixture
def smtp(gate: threading.Event) -> Iterator[SmtpTestServer]:
    """The mail server the demo sends through; every DATA waits while ``gate`` is clear."""
    with SmtpTestServer() as server:
        server.hold_data(gate, timeout=GATE_TIMEOUT)
        try:
            yield server
        finally:
            gate.set()  # whatever happened, release held messages so the server stops


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2.0).status_code == 200
    except httpx.TransportError:
        return False


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


@pytest.fixture
def demo(tmp_path: Path, smtp: SmtpTestServer) -> Iterator[Demo]:
    """``newsletter demo`` in a copy of the sample folder (welcome email included, as in
    the repository), served on a free port; yields once it printed its setup link."""
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    config = copy_sample_folder(tmp_path / "clinic", welcome=True)
    edit = smtp_settings(base_url, smtp.host, smtp.port, batch=BATCH, timeout=SMTP_TIMEOUT)
    config.write_text(edit(config.read_text(encoding="utf-8")), "utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NEWSLETTER_", "SENDGRID_"))}
    env["NEWSLETTER_SECRET_KEY"] = SECRET
    env["PYTHONUNBUFFERED"] = "1"  # its lines reach the log as printed
    log = tmp_path / "demo.log"
    command = [*_newsletter_command(), "--config", str(config), "demo"]
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*command, "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=config.parent,
        )
    running = Demo(base_url=base_url, config=config, process=process, log=log)
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while (found := SETUP_LINK.search(running.output())) is None or (
            "Scheduler running" not in running.output()
        ):
            if process.poll() is not None:
                pytest.fail(f"newsletter demo exited:\n{running.output()[-3000:]}")
            assert time.monotonic() < deadline, f"no setup link in:\n{running.output()}"
            time.sleep(0.1)
        running.setup_link = found.group(1)
        # The lines come just before the server listens: wait until it answers.
        while not _answers(f"{base_url}/archive"):
            if process.poll() is not None:
                pytest.fail(f"newsletter demo exited:\n{running.output()[-3000:]}")
            assert time.monotonic() < deadline, f"{base_url} did not answer:\n{running.output()}"
            time.sleep(0.1)
        yield running
    finally:
        _stop(process)


@pytest.fixture
def newsletter(demo: Demo) -> Iterator[Newsletter]:
    """The demo folder's own data, opened beside it, for checks after the browser's steps."""
    opened = Newsletter(load_settings(demo.config, environ={"NEWSLETTER_SECRET_KEY": SECRET}))
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(PAGE_TIMEOUT_MS)
    try:
        yield context.new_page()
    finally:
        context.close()


def _checked(page: Page, name: str, what: str) -> None:
    """axe over the page as it is (light and dark), then a screenshot for a person."""
    assert_accessible(page, context=what)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"owner-flow-{name}.png"), full_page=True)


def _count(page: Page, name: str) -> int:
    return int(page.locator(f'[data-count="{name}"]').first.inner_text().replace(",", ""))


def _wait(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not within {timeout:.0f} s"
        time.sleep(0.2)


def _one_off_time(newsletter: Newsletter, lead: float = 12.0) -> str:
    """The first whole minute at least ``lead`` seconds ahead, on the clinic's clock.

    Whole minutes: the form's ``datetime-local`` field has the browser's default
    step of 60 s, so Chromium refuses to submit a time with seconds (stepMismatch).
    """
    now = datetime.now(newsletter.settings.schedule.tz)
    at = (now + timedelta(seconds=lead)).replace(second=0, microsecond=0) + timedelta(minutes=1)
    return f"{at:%Y-%m-%dT%H:%M}"


def test_the_owner_runs_the_newsletter_from_the_browser_alone(
    demo: Demo,
    newsletter: Newsletter,
    page: Page,
    smtp: SmtpTestServer,
    gate: threading.Event,
    tmp_path: Path,
) -> None:
    base = demo.base_url
    people = [f"patient{n}@flow.example" for n in range(UPLOADED)]
    audience = UPLOADED + SAMPLE_PEOPLE

    # 1. The link `make run` printed opens this server and creates the first owner.
    assert demo.setup_link.startswith(f"{base}/admin/setup/"), demo.setup_link
    page.goto(demo.setup_link)
    assert page.locator("h1").inner_text() == "Create the owner's account"
    _checked(page, "setup", "the setup page")
    page.get_by_label("Your email address").fill(OWNER)
    page.get_by_label(re.compile("^Password")).fill(PASSWORD)
    page.get_by_label("The same password again").fill(PASSWORD)
    page.get_by_label("The same password again").press("Enter")
    page.wait_for_url(f"{base}/admin")
    _checked(page, "queue", "the queue, just after setup")

    # 2. Upload a CSV of a few hundred people.
    page.get_by_role("link", name="Subscribers", exact=True).click()
    page.wait_for_url(f"{base}/admin/subscribers")
    page.get_by_role("link", name="Import a CSV file").click()
    page.wait_for_url(f"{base}/admin/subscribers/import")
    _checked(page, "import-form", "the CSV upload form")
    upload = tmp_path / "clinic-patients.csv"
    upload.write_text(
        "email,first_name\n" + "".join(f"{a},Patient{n}\n" for n, a in enumerate(people)),
        encoding="utf-8",
    )
    page.get_by_label("CSV file").set_input_files(str(upload))
    page.get_by_role("button", name="Import").click()
    page.wait_for_load_state()
    assert page.locator("h1").inner_text() == "Imported clinic-patients.csv"
    _checked(page, "import-report", "the import report")
    assert {status_of(newsletter, a) for a in people} == {"active"}

    # 3. Write a new article and save it (queued, the form's default).
    page.get_by_role("link", name="Write", exact=True).click()
    page.wait_for_url(f"{base}/admin/articles/new")
    _checked(page, "write", "the new article form")
    page.get_by_label("Title", exact=True).fill(TITLE)
    page.get_by_label("Summary").fill("Five minutes a day for the shoulders that carry your desk.")
    page.get_by_label("Author").select_option("Alan")
    page.get_by_label(re.compile("^Article")).fill(
        "Hours at a desk pull the shoulders forward.\n\n## What helps\n\n"
        "Stand up each hour, roll the shoulders back, and book a massage when it lingers.\n"
    )
    assert page.get_by_label("Status").input_value() == "queued"
    page.get_by_role("button", name="Save").click()
    page.wait_for_url(re.compile(r".*/admin/articles/[a-z0-9-]+/edit\?saved=1$"))
    slug = page.url.split("/admin/articles/")[1].split("/")[0]
    assert page.get_by_role("status").inner_text().startswith(f"Saved articles/{slug}.md")
    saved = (demo.config.parent / "articles" / f"{slug}.md").read_text(encoding="utf-8")
    assert saved.startswith(f'---\ntitle: "{TITLE}"\n') and "status: draft" not in saved
    _checked(page, "saved", "the edit form after saving")

    # 4. Preview it as the email at phone width.
    page.get_by_role("link", name="Preview and send a test").click()
    page.wait_for_url(f"{base}/admin/articles/{slug}/preview")
    phone = page.locator('iframe[width="375"]')
    assert phone.count() >= 1
    email = page.frame_locator('iframe[width="375"]').first
    assert email.locator("h1").inner_text() == TITLE
    assert "roll the shoulders back" in email.locator("body").inner_text()
    ARTIFACTS.mkdir(exist_ok=True)
    phone.first.screenshot(path=str(ARTIFACTS / "owner-flow-preview-phone.png"))
    _checked(page, "preview", "the article's preview")

    # Everyone uploaded is welcomed by the scheduler's welcome pass, through the open
    # gate; only then is the gate closed, so it holds the one-off send alone.
    _wait(
        lambda: set(people) <= {a.lower() for a in smtp.recipients},
        WELCOMES_TIMEOUT,
        "the uploaded people's welcome emails",
    )
    gate.clear()
    before = len(smtp.messages)

    # 5. Schedule it as a one-off, on the clinic's clock.
    page.get_by_role("link", name="Schedule", exact=True).click()
    page.wait_for_url(f"{base}/admin/schedule")
    assert "The scheduler is running." in page.content()
    page.get_by_label("Article", exact=True).select_option(slug)
    at = _one_off_time(newsletter)
    page.get_by_label(re.compile("^Date and time")).fill(at)
    page.get_by_role("button", name="Add the one-off send").click()
    page.wait_for_url(f"{base}/admin/schedule")
    one_offs = page.get_by_role("table", name="One-off sends")
    assert TITLE in one_offs.inner_text()
    shown = one_offs.locator("time").first.get_attribute("datetime") or ""
    # Shown, and kept, as the clinic's time with its offset (not the machine's zone).
    clinic_time = datetime.fromisoformat(at).replace(tzinfo=newsletter.settings.schedule.tz)
    assert shown == clinic_time.isoformat(), (shown, at)
    _checked(page, "schedule", "the Schedule page with the one-off send")

    # 6. The campaign appears when the one-off fires; its page counts up without a reload.
    page.get_by_role("link", name="Campaigns", exact=True).click()
    page.wait_for_url(f"{base}/admin/campaigns")
    deadline = time.monotonic() + FIRING_TIMEOUT
    while page.get_by_role("link", name=TITLE).count() == 0:
        assert time.monotonic() < deadline, f"no campaign for the one-off of {at}"
        page.wait_for_timeout(1000)
        page.reload()
    page.get_by_role("link", name=TITLE).first.click()
    page.wait_for_url(f"{base}/admin/campaigns/{slug}")
    page.evaluate("() => { window.loadedOnce = true; }")  # gone, were the page reloaded
    try:
        # Every DATA waits at the gate: nothing of this campaign can be sent yet.
        at_load = _count(page, "sent")
        planned = _count(page, "planned")
    finally:
        gate.set()
    assert planned == audience and at_load < planned, (at_load, planned)
    page.wait_for_function(
        "n => document.querySelector('[data-count=\"sent\"]').textContent.replace(/,/g, '') == n",
        arg=str(planned),
        timeout=FINISH_TIMEOUT_MS,
    )
    assert page.evaluate("() => window.loadedOnce === true"), "the page was reloaded"
    assert _count(page, "pending") == 0
    page.get_by_text("Finished: these numbers are final").wait_for()
    _checked(page, "campaign", "the finished campaign, as watched")
    [counts] = newsletter.status(slug)
    assert counts.sent == counts.planned == audience
    assert smtp.gate_timeouts == 0, "the SMTP server gave up waiting for the test's gate"
    assert smtp.gate_waits > 0, "nothing was held: the count below the total proves nothing"
    sent_now = Counter(a.lower() for m in smtp.messages[before:] for a in m.rcpt_tos)
    assert len(sent_now) == audience and set(sent_now.values()) == {1}  # once each

    # 7. One person's page: what they received.
    person = people[7]
    page.get_by_role("link", name="Subscribers", exact=True).click()
    page.wait_for_url(f"{base}/admin/subscribers")
    search = page.get_by_role("searchbox", name=re.compile("^Email address, or part of it"))
    search.fill(person)
    search.press("Enter")
    page.wait_for_url(re.compile(r".*/admin/subscribers\?q="))
    page.get_by_role("link", name=person).click()
    page.wait_for_url(re.compile(r".*/admin/subscribers/\d+$"))
    assert page.locator("h1").inner_text() == person
    received = page.get_by_role("row").filter(has_text=TITLE)
    assert received.count() == 1 and "sent" in received.inner_text(), received.all_inner_texts()
    _checked(page, "person", "a subscriber's page")
    assert demo.process.poll() is None, demo.output()[-3000:]
