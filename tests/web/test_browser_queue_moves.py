"""The queue page's Move buttons in headless Chromium against a real ``newsletter serve``
(issue 15): a writer moves an article with the keyboard, the new order shows, the focus
is back on the moved article, and the page passes axe.

Uses the fixtures of :mod:`tests.web.test_browser` (skipped without Chromium, except
under ``REQUIRE_ALL=1``).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from tests.web.axe import assert_accessible
from tests.web.test_browser import ARTIFACTS, Site, browser, page, site
from tests.web.test_browser_admin import WRITER, accounts, log_in

if TYPE_CHECKING:
    from playwright.sync_api import Page

__all__ = ["accounts", "browser", "page", "site"]  # fixtures, used by name

DATED = {
    "sleep-and-recovery.md": '---\ntitle: "Sleep and Recovery"\nsummary: "Rest."\n'
    "author: Alan\nsend_after: 2026-12-20 09:00\n---\nSleep.\n",
    "posture-basics.md": '---\ntitle: "Posture Basics"\nsummary: "Sit well."\n'
    "author: Alan\nsend_after: 2026-12-27\n---\nPosture.\n",
}


def _rows(page: Page) -> list[str]:
    ids = page.locator("td[id^=q-]").evaluate_all("cells => cells.map(c => c.id)")
    return [str(i).removeprefix("q-") for i in ids]


def test_a_writer_moves_an_article_up_with_the_keyboard(accounts: Site, page: Page) -> None:
    folder = accounts.newsletter.settings.articles_path
    for name, text in DATED.items():
        (folder / name).write_text(text, encoding="utf-8")
    try:
        log_in(page, accounts.base_url, WRITER)
        before = _rows(page)
        assert before[-2:] == ["sleep-and-recovery", "posture-basics"]
        assert_accessible(page, context="the queue page with Move buttons (writer)")
        button = page.get_by_role("button", name=re.compile(r"^Move up\W+Posture Basics$"))
        button.focus()
        page.keyboard.press("Enter")
        page.wait_for_url(re.compile(r".*/admin\?moved=posture-basics#q-posture-basics$"))
        assert _rows(page) == [*before[:-2], "posture-basics", "sleep-and-recovery"]
        focused = page.evaluate("document.activeElement && document.activeElement.id")
        assert focused == "q-posture-basics"
        assert page.get_by_role("status").filter(has_text="Posture Basics").count() == 1
        assert "send_after: 2026-12-20 09:00" in (folder / "posture-basics.md").read_text()
        assert_accessible(page, context="the queue page after a move")
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "admin-queue-moved.png"), full_page=True)
    finally:
        for name in DATED:
            (folder / name).unlink(missing_ok=True)
