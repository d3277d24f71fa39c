"""The dashboard in headless Chromium against a real ``newsletter serve``: axe-core over
its pages, and the writer's flow (log in, write, preview, save, see it queued).

Uses the fixtures of :mod:`tests.web.test_browser` (Debian's Chromium driven by
Playwright; skipped without it, except under ``REQUIRE_ALL=1``).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest

from pipeline.accounts import hash_password
from pipeline.store.scheduler_state import SchedulerStateStore
from pipeline.store.users import add_user, find_user
from pipeline.subscribers import iter_subscribers
from tests.helpers import SAMPLE_SLUG
from tests.web.admin_helpers import ROUTES
from tests.web.axe import assert_accessible
from tests.web.test_browser import ARTIFACTS, Site, browser, page, site

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

__all__ = ["browser", "page", "site"]  # fixtures, used by name

WRITER = "writer@clinic.example"
OWNER = "owner@clinic.example"
PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def accounts(site: Site) -> Site:
    """An owner and a writer in the served folder's database."""
    for email, role in ((OWNER, "owner"), (WRITER, "writer")):
        if find_user(site.newsletter.sessions, email) is None:
            add_user(
                site.newsletter.sessions,
                email,
                role,
                hash_password(PASSWORD),
                site.newsletter.clock(),
            )
    return site


def log_in(page: Page, base_url: str, email: str) -> None:
    """Log in with the keyboard, as a person would; lands on the queue."""
    page.goto(f"{base_url}/admin")
    page.wait_for_url(f"{base_url}/admin/login**")
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Password").press("Enter")
    page.wait_for_url(f"{base_url}/admin")


def _shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"admin-{name}.png"), full_page=True)


def test_login_and_queue_pages_are_accessible(accounts: Site, page: Page) -> None:
    base = accounts.base_url
    page.goto(f"{base}/admin/login")
    assert_accessible(page, context="the login page")
    page.get_by_label("Email address").fill(WRITER)
    page.get_by_label("Password").fill("wrong password")
    page.get_by_label("Password").press("Enter")
    page.wait_for_load_state()
    assert page.get_by_role("alert").count() == 1
    assert_accessible(page, context="the login page with an error")
    log_in(page, base, OWNER)
    assert_accessible(page, context="the queue page (owner)")
    _shot(page, "queue-owner")


def test_the_axe_check_fails_on_a_real_violation(page: Page) -> None:
    # Light grey on white (contrast 1.6:1) and an image without a text alternative:
    # both serious; the check must name them, or a pass above would mean nothing.
    page.set_content(
        '<!doctype html><html lang="en"><title>t</title><main>'
        '<p style="color:#ccc;background:#fff">faint</p>'
        '<img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=">'
        "</main></html>"
    )
    with pytest.raises(AssertionError) as failure:
        assert_accessible(page, context="a bad page")
    message = str(failure.value)
    assert "a bad page" in message
    assert "color-contrast (serious)" in message and "image-alt (critical)" in message
    assert "light:" in message and "dark:" in message


def test_a_writer_writes_previews_and_queues_an_article(accounts: Site, page: Page) -> None:
    base = accounts.base_url
    folder = accounts.newsletter.settings.articles_path
    log_in(page, base, WRITER)
    page.get_by_role("link", name="Write", exact=True).click()
    page.wait_for_url(f"{base}/admin/articles/new")
    assert page.locator("h1").inner_text() == "New article"
    assert_accessible(page, context="the new article form")

    page.get_by_label("Title", exact=True).fill("Knee Pain and Massage")
    page.get_by_label(re.compile("^Series")).fill("massage-and-wellbeing")
    page.get_by_label("Part").fill("4")
    page.get_by_label("Summary").fill("What massage can do for sore knees.")
    page.get_by_label("Author").select_option("Alan")
    page.get_by_label(re.compile("^Article")).fill(
        "Knees take every step.\n\n## What helps\n\nRest, then massage.\n"
    )
    page.get_by_role("button", name="Preview").click()
    page.wait_for_url(f"{base}/admin/articles/preview")
    frames = page.locator("iframe")
    assert frames.count() == 4
    assert [frames.nth(i).get_attribute("width") for i in range(4)] == [
        "375",
        "375",
        "1280",
        "1280",
    ]
    phone = page.frame_locator('iframe[title="The email: Phone, 375 px, dark"]')
    assert phone.locator("h1").inner_text() == "Knee Pain and Massage"
    assert "Knees take every step." in page.locator("pre.text-part").inner_text()
    assert not (folder / "knee-pain-and-massage.md").exists()  # a preview saves nothing
    assert (
        page.get_by_label("Title", exact=True).input_value() == "Knee Pain and Massage"
    )  # form kept
    _shot(page, "write-preview")
    for i in range(4):  # each frame as a person sees it, for the artifacts
        label = frames.nth(i).get_attribute("title") or str(i)
        name = re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")
        frames.nth(i).screenshot(path=str(ARTIFACTS / f"admin-{name}.png"))
    assert_accessible(page, context="the form with its preview")

    # Save with the keyboard only: Tab from the last field to the Save button, then Enter.
    page.get_by_label(re.compile("^Article")).focus()
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.textContent") == "Save"
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}/admin/articles/knee-pain-and-massage/edit?saved=1")
    assert (
        page.get_by_role("status")
        .inner_text()
        .startswith("Saved articles/knee-pain-and-massage.md")
    )
    assert (
        (folder / "knee-pain-and-massage.md")
        .read_text(encoding="utf-8")
        .startswith('---\ntitle: "Knee Pain and Massage"\nseries: massage-and-wellbeing\npart: 4\n')
    )
    assert_accessible(page, context="the edit form after saving")

    page.get_by_role("link", name="Preview and send a test").click()
    page.wait_for_url(f"{base}/admin/articles/knee-pain-and-massage/preview")
    assert_accessible(page, context="the saved article's preview")
    page.get_by_role("button", name=re.compile("^Send a test to me")).click()
    page.wait_for_load_state()
    assert WRITER in page.get_by_role("status").inner_text()
    outbox = accounts.newsletter.settings.outbox_path
    assert any(WRITER in p.name for p in outbox.rglob("*.eml"))
    _shot(page, "preview-and-test")

    page.get_by_role("link", name="Queue", exact=True).click()
    page.wait_for_url(f"{base}/admin")
    queued = page.get_by_role("table", name="Queued articles, in send order")
    row = queued.get_by_role("row").filter(has_text="Knee Pain and Massage")
    assert row.count() == 1 and "queued" in row.inner_text()
    by_series = page.get_by_role("table", name="Massage and Wellbeing")
    assert "Knee Pain and Massage" in by_series.get_by_role("row").nth(4).inner_text()  # part 4
    assert_accessible(page, context="the queue with the new article")
    _shot(page, "queue-writer")


def test_the_preview_follows_as_the_writer_types(accounts: Site, page: Page) -> None:
    """With script, the email under the form follows the text without pressing Preview
    (and without saving); the page allows only that one script, by its hash."""
    base = accounts.base_url
    folder = accounts.newsletter.settings.articles_path
    log_in(page, base, WRITER)
    page.goto(f"{base}/admin/articles/new")
    policy = page.evaluate(
        "() => fetch(location.href).then(r => r.headers.get('content-security-policy'))"
    )
    assert "script-src 'sha256-" in policy and "unsafe-inline" not in policy.split("script-src")[1]
    page.get_by_label("Title", exact=True).fill("Shoulder Care")
    page.get_by_label("Summary").fill("Looking after your shoulders.")
    assert page.locator("#live-preview iframe").count() == 0
    page.get_by_label(re.compile("^Article")).press_sequentially("Roll them back slowly.")
    page.locator("#live-preview pre.text-part").wait_for(timeout=20_000)
    assert "Roll them back slowly." in page.locator("#live-preview pre.text-part").inner_text()
    phone = page.frame_locator('iframe[title="The email: Phone, 375 px, light"]')
    assert phone.locator("h1").inner_text() == "Shoulder Care"
    assert page.url == f"{base}/admin/articles/new"  # never left the form
    page.get_by_label(re.compile("^Article")).press_sequentially(" Then forward.")
    page.wait_for_function(
        "() => document.querySelector('#live-preview pre.text-part')"
        ".textContent.includes('Then forward.')",
        timeout=20_000,
    )
    assert not (folder / "shoulder-care.md").exists()  # a preview saves nothing
    assert_accessible(page, context="the form with its live preview")


# -- what a writer cannot do ----------------------------------------------------------------

#: Names of the owner's controls as a screen reader lists them (links and buttons).
OWNER_CONTROLS = re.compile(
    r"^(Subscribers|Schedule|Campaigns|Send now.*|Send it now.*|Pause the schedule|"
    r"Resume the schedule|Retry these.*|Resend.*|Import.*|Export.*|Remove.*|Forget.*)$",
    re.IGNORECASE,
)


def _owner_route(path: str) -> re.Pattern[str]:
    """``/admin/campaigns/{slug}`` -> a pattern matching its concrete paths."""
    return re.compile("^" + re.sub(r"\\\{[a-z_]+\\\}", "[^/?#]+", re.escape(path)) + "/?$")


#: Every route only an owner may use (the classification tests/web/admin_access/ keeps
#: complete), as patterns for the targets of the links and forms on a writer's pages.
OWNER_ROUTES = {
    (method, path): _owner_route(path) for (method, path), who in ROUTES.items() if who == "owner"
}


def _targets(page: Page) -> set[str]:
    """Where the page's links, forms and form buttons lead (paths on this site)."""
    found: list[str] = page.evaluate(
        """() => [
          ...[...document.querySelectorAll('a[href]')].map(a => a.href),
          ...[...document.querySelectorAll('form')].map(f => f.action),
          ...[...document.querySelectorAll('[formaction]')].map(b => b.formAction),
        ].filter(u => u.startsWith(location.origin)).map(u => new URL(u).pathname)"""
    )
    return set(found)


def _owner_controls(page: Page) -> list[str]:
    names: list[str] = []
    for role in ("link", "button"):
        controls = page.get_by_role(role, name=OWNER_CONTROLS)
        names.extend(controls.nth(i).inner_text() for i in range(controls.count()))
    return names


def _owner_targets(targets: set[str]) -> set[str]:
    return {t for t in targets for pattern in OWNER_ROUTES.values() if pattern.match(t)}


def _concrete(path: str) -> str:
    # The sent sample issue (a campaign exists) and the sample list's first subscriber:
    # the owner would get a real page at each of these, so a 403 is the role, not a 404.
    return path.replace("{slug}", SAMPLE_SLUG).replace("{who}", "1")


def test_a_writer_sees_no_owner_controls_and_their_routes_refuse(
    accounts: Site, page: Page, browser: Browser
) -> None:
    base = accounts.base_url
    # First the owner, so an absence below means the role and not a broken page.
    owner_context = browser.new_context()
    try:
        owner = owner_context.new_page()
        log_in(owner, base, OWNER)
        assert {"Subscribers", "Schedule", "Campaigns", "Pause the schedule"} <= set(
            _owner_controls(owner)
        )
        assert _owner_targets(_targets(owner))
    finally:
        owner_context.close()

    log_in(page, base, WRITER)
    nav = page.get_by_role("navigation").first
    assert [nav.get_by_role("link").nth(i).inner_text() for i in range(3)] == [
        "Queue",
        "Write",
        "Archive",
    ]
    seen: dict[str, set[str]] = {}
    for name, url in (
        ("the queue", f"{base}/admin"),
        ("the new article form", f"{base}/admin/articles/new"),
        ("an article's edit form", f"{base}/admin/articles/{SAMPLE_SLUG}/edit"),
        ("an article's preview", f"{base}/admin/articles/{SAMPLE_SLUG}/preview"),
    ):
        assert page.goto(url) is not None and page.url == url
        assert _owner_controls(page) == [], name
        seen[name] = _targets(page)
        assert _owner_targets(seen[name]) == set(), name
    assert f"/admin/articles/{SAMPLE_SLUG}/test-send" in seen["an article's preview"]

    # Opened directly, each owner page refuses with the 403 page, which says why.
    for (method, path), _pattern in OWNER_ROUTES.items():
        if method != "GET":
            continue
        response = page.goto(f"{base}{_concrete(path)}")
        assert response is not None and response.status == 403, path
        assert page.locator("h1").inner_text() == "Only an owner can do that", path
    assert_accessible(page, context="the owner-only refusal")
    _shot(page, "writer-refused")

    # And each owner action posted with the writer's own valid CSRF token (as a form
    # kept from an owner's page would post it) is refused and changes nothing.
    page.goto(f"{base}/admin")
    token = page.locator("input[name=csrf_token]").first.input_value()
    paused_before = SchedulerStateStore(accounts.newsletter.sessions).status().paused
    people_before = [(s.email, s.status) for s in iter_subscribers(accounts.newsletter.sessions)]
    for (method, path), _pattern in OWNER_ROUTES.items():
        if method != "POST":
            continue
        answer = page.request.post(
            f"{base}{_concrete(path)}", form={"csrf_token": token}, max_redirects=0
        )
        assert answer.status == 403, path
    assert SchedulerStateStore(accounts.newsletter.sessions).status().paused == paused_before
    people = [(s.email, s.status) for s in iter_subscribers(accounts.newsletter.sessions)]
    assert people == people_before  # nobody removed or forgotten
