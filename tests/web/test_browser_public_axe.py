"""axe-core over every public page, in headless Chromium, light and dark.

The subscriber's side of the site (subscribe, check your inbox, confirm, confirmed,
unsubscribe and its done page, the unsubscribe help, the archive index, an archived
issue, a coming-soon issue, not found, a bad link, the owner's hold page and the
error page) is reached the way a person reaches it: by following the links the
emails carry and pressing the pages' buttons, so each page is checked in the state
a reader sees. Uses the fixtures of :mod:`tests.web.test_browser` (skipped without
Chromium, except under ``REQUIRE_ALL=1``) and :func:`tests.web.axe.assert_accessible`.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from pipeline.owner.hold import hold_token
from tests.helpers import SAMPLE_SLUG
from tests.web.axe import assert_accessible
from tests.web.helpers import NEXT_SLUG, confirm_link, confirm_path, unsubscribe_url
from tests.web.test_browser import Site, browser, page, site

if TYPE_CHECKING:
    from playwright.sync_api import Page

__all__ = ["browser", "page", "site"]  # fixtures, used by name

CONFIRM_WAIT = 20.0  # seconds for serve's background sender to write the confirmation


def _heading(page: Page) -> str:
    return page.locator("h1").first.inner_text()


def _landmarks(page: Page) -> list[str]:
    """The page's main landmarks (element or role), as a screen reader's list shows them."""
    found: list[str] = page.eval_on_selector_all(
        "main, [role=main]", "els => els.map(e => e.tagName.toLowerCase())"
    )
    return found


def test_subscribe_confirm_pages_are_accessible(site: Site, page: Page) -> None:
    address = "axe.reader@example.com"
    page.goto(f"{site.base_url}/subscribe")
    assert_accessible(page, context="the subscribe form")

    # The form's own error state: the message and the invalid field are what differ.
    page.get_by_label("Email address").fill("not an address")
    page.get_by_role("button", name="Subscribe").click()
    page.wait_for_load_state()
    assert page.locator("[aria-invalid=true]").count() == 1
    assert_accessible(page, context="the subscribe form with an error")

    page.get_by_label("Email address").fill(address)
    page.get_by_role("button", name="Subscribe").click()
    page.wait_for_load_state()
    assert _heading(page) == "Check your inbox"
    assert_accessible(page, context="check your inbox")

    deadline = time.monotonic() + CONFIRM_WAIT
    while not confirm_path(site.newsletter, address).exists():
        assert time.monotonic() < deadline, f"no confirmation email within {CONFIRM_WAIT:.0f} s"
        time.sleep(0.05)
    page.goto(confirm_link(site.newsletter, address))
    assert page.get_by_role("button", name="Confirm my subscription").count() == 1
    assert_accessible(page, context="the confirm page")
    page.get_by_role("button", name="Confirm my subscription").click()
    page.wait_for_load_state()
    assert _heading(page) == "You're subscribed"
    assert_accessible(page, context="the confirmed page")


def test_unsubscribe_pages_are_accessible(site: Site, page: Page) -> None:
    page.goto(unsubscribe_url(site.newsletter, "sam.nguyen@example.com"))
    assert page.get_by_role("button", name="Unsubscribe").count() == 1
    assert_accessible(page, context="the unsubscribe page")
    page.get_by_role("button", name="Unsubscribe").click()
    page.wait_for_load_state()
    assert _heading(page) == "You're unsubscribed"
    assert_accessible(page, context="the unsubscribed page")

    page.goto(f"{site.base_url}/unsubscribe")  # the archive copy's link: no one's token
    assert_accessible(page, context="the unsubscribe help page")


def test_archive_pages_are_accessible_and_an_issue_has_one_main(site: Site, page: Page) -> None:
    page.goto(f"{site.base_url}/archive")
    assert page.get_by_role("link", name="Hip Pain & How Massage Therapy Helps").count() == 1
    assert_accessible(page, context="the archive index")

    page.goto(f"{site.base_url}/archive/{SAMPLE_SLUG}")
    # The issue's own content is the page's main landmark (axe's landmark rules count
    # it: exactly one, holding the article, between the archive's bar and its series card).
    assert _landmarks(page) == ["main"]
    main = page.get_by_role("main")
    assert "Hip Pain" in main.inner_text()
    assert "Newsletter archive" not in main.inner_text()
    assert page.get_by_role("banner").count() == 1
    assert page.get_by_role("navigation", name="More issues").count() == 1
    assert_accessible(page, context="an archived issue")

    page.goto(f"{site.base_url}/archive/{NEXT_SLUG}")
    assert "Coming soon" in page.content()
    assert_accessible(page, context="a coming-soon issue")


def test_error_pages_are_accessible(site: Site, page: Page) -> None:
    response = page.goto(f"{site.base_url}/archive/no-such-issue")
    assert response is not None and response.status == 404
    assert_accessible(page, context="the not-found page")

    response = page.goto(f"{site.base_url}/unsubscribe/not-a-real-token")
    assert response is not None and response.status == 400
    assert_accessible(page, context="a bad unsubscribe link")

    response = page.goto(f"{site.base_url}/confirm/not-a-real-token")
    assert response is not None and response.status == 400
    assert_accessible(page, context="a bad confirm link")

    # The generic error page: a page the browser cannot GET (the webhook takes POSTs
    # only), as a person pasting a link from the provider's settings would see it.
    response = page.goto(f"{site.base_url}/webhooks/sendgrid")
    assert response is not None and response.status == 405
    assert _heading(page) == "That didn't work"
    assert_accessible(page, context="the error page")


def test_hold_page_is_accessible(site: Site, page: Page) -> None:
    firing = datetime.now(UTC) + timedelta(days=2)  # the server's clock is the real one
    token = hold_token(site.newsletter, firing, SAMPLE_SLUG)
    page.goto(f"{site.base_url}/hold/{token}")
    assert _heading(page) == "Hold this send?"
    assert_accessible(page, context="the hold page")
    page.get_by_role("button", name="Hold this send").click()
    page.wait_for_load_state()
    assert _heading(page) == "Held"
    assert_accessible(page, context="the held page")

    # Its preview is the email as it would go out: the email's own markup, no frame.
    page.goto(f"{site.base_url}/hold/{token}/preview")
    assert "Hip Pain" in _heading(page)
    assert_accessible(page, context="the hold page's preview")

    response = page.goto(f"{site.base_url}/hold/forged-token")
    assert response is not None and response.status == 400
    assert_accessible(page, context="a bad hold link")
