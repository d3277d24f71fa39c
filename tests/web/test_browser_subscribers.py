"""The owner's subscribers flow in headless Chromium against a real ``newsletter serve``:
upload a CSV, read the per-row report, search, open a person, erase them through the
confirmation; axe-core over every page on the way, light and dark.

Uses the fixtures of :mod:`tests.web.test_browser` (Debian's Chromium driven by
Playwright; skipped without it, except under ``REQUIRE_ALL=1``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from pipeline.accounts import hash_password
from pipeline.store.users import add_user, find_user
from tests.web.axe import assert_accessible
from tests.web.helpers import status_of
from tests.web.test_browser import ARTIFACTS, Site, browser, page, site

if TYPE_CHECKING:
    from playwright.sync_api import Page

__all__ = ["browser", "page", "site"]  # fixtures, used by name

OWNER = "owner@clinic.example"
PASSWORD = "correct horse battery"
PERSON = "ada.browser@flow.example"


@pytest.fixture(scope="module")
def owner_site(site: Site) -> Site:
    """The served folder with an owner's account."""
    if find_user(site.newsletter.sessions, OWNER) is None:
        add_user(
            site.newsletter.sessions,
            OWNER,
            "owner",
            hash_password(PASSWORD),
            site.newsletter.clock(),
        )
    return site


def _shot(page: Page, name: str) -> None:
    """Light and dark screenshots for a person to look at; the page is left light."""
    ARTIFACTS.mkdir(exist_ok=True)
    for scheme in ("dark", "light"):
        page.emulate_media(color_scheme=scheme)  # type: ignore[arg-type]
        page.screenshot(
            path=str(ARTIFACTS / f"admin-subscribers-{name}-{scheme}.png"), full_page=True
        )


def _checked(page: Page, name: str) -> None:
    """axe over the page as it is (light and dark), then a screenshot for a person."""
    assert_accessible(page, context=f"the subscribers section: {name}")
    _shot(page, name)


def test_owner_uploads_searches_opens_and_forgets_a_person(
    owner_site: Site, page: Page, tmp_path: Path
) -> None:
    base = owner_site.base_url
    page.goto(f"{base}/admin/subscribers")
    page.wait_for_url(f"{base}/admin/login**")
    page.get_by_label("Email address").fill(OWNER)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Password").press("Enter")
    page.wait_for_url(f"{base}/admin/subscribers")
    assert page.locator("h1").inner_text() == "Subscribers"
    _checked(page, "list")

    # Upload: one good row, one bad one.
    page.get_by_role("link", name="Import a CSV file").click()
    page.wait_for_url(f"{base}/admin/subscribers/import")
    _checked(page, "import-form")
    upload = tmp_path / "new-patients.csv"
    upload.write_text(
        f"email,first_name,last_name\n{PERSON},Ada,Browser\nnot an address,Bad,Row\n",
        encoding="utf-8",
    )
    page.get_by_label("CSV file").set_input_files(str(upload))
    page.get_by_role("button", name="Import").click()
    page.wait_for_load_state()
    assert page.locator("h1").inner_text() == "Imported new-patients.csv"
    report = page.get_by_role("table", name=re.compile("^Rows skipped"))
    assert report.locator("tbody tr").count() == 1
    assert report.locator("tbody td").first.inner_text() == "3"  # the bad row's line
    _checked(page, "import-report")
    assert status_of(owner_site.newsletter, PERSON) == "active"

    # Search with the keyboard, in another case than stored.
    page.get_by_role("link", name="Back to the subscribers").click()
    page.wait_for_url(f"{base}/admin/subscribers")
    search = page.get_by_role("searchbox", name=re.compile("^Email address, or part of it"))
    search.fill("ADA.BROWSER")
    search.press("Enter")
    page.wait_for_url(re.compile(r".*/admin/subscribers\?q=ADA\.BROWSER$"))
    results = page.get_by_role("table", name=re.compile("contains"))
    assert results.get_by_role("link").all_inner_texts() == [PERSON]
    _checked(page, "search")

    # The person's page, opened with the keyboard.
    results.get_by_role("link", name=PERSON).focus()
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r".*/admin/subscribers/\d+$"))
    assert page.locator("h1").inner_text() == PERSON
    assert "Consent record" in page.content()
    _checked(page, "person")

    # Forget, through the confirmation that names the address.
    page.get_by_role("link", name=re.compile("^Erase this person")).click()
    page.wait_for_url(re.compile(r".*/admin/subscribers/\d+/forget$"))
    assert page.locator("h1").inner_text() == f"Erase {PERSON} for good?"
    _checked(page, "forget-confirm")
    assert status_of(owner_site.newsletter, PERSON) == "active"  # looking is not erasing
    page.get_by_role("button", name=f"Erase {PERSON}").click()
    page.wait_for_url(f"{base}/admin/subscribers?done=erased")
    assert "The person was erased" in page.get_by_role("status").inner_text()
    _checked(page, "erased")
    assert status_of(owner_site.newsletter, PERSON) == "absent"
