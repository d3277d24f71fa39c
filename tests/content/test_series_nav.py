"""One navigation shape: the email and the archive page show Previous/Next from one SeriesNav."""

from __future__ import annotations

import html
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from pipeline.config import Settings, load_settings
from pipeline.content.articles import Article
from pipeline.content.series import SeriesLink, SeriesNav
from pipeline.render import render_issue
from pipeline.web.archive import issue_frame
from pipeline.web.pages import Pages
from pipeline.web.security import CsrfGuard
from tests.helpers import FixedClock

ROOT = Path(__file__).resolve().parents[2]

# Titles and URLs no article file holds: whatever shows them got them from this record.
NAV = SeriesNav(
    series="the-art-of-rest",
    part=2,
    position=2,
    total=3,
    previous=SeriesLink("first-rest", "Rest <One> & Sleep", "https://blog.example.org/one", True),
    next=SeriesLink(
        "third-rest",
        "Rest Three: Breathing",
        "https://blog.example.org/three",
        False,
        # 22:00 UTC on Mon 7 Dec is Tue 8 Dec in Sydney, the sample folder's timezone.
        planned_at=datetime(2026, 12, 7, 22, 0, tzinfo=UTC),
    ),
)


@pytest.fixture(scope="module")
def settings() -> Settings:
    return load_settings(ROOT / "newsletter.toml", environ={})


def _pages(settings: Settings) -> Pages:
    csrf = CsrfGuard("x" * 32, FixedClock(), base_url=settings.web.base_url, max_age=3600)
    return Pages(settings, csrf)


def test_email_and_archive_show_previous_next_from_the_same_record(settings: Settings) -> None:
    article = Article(
        slug="second-rest", title="Rest Two", path=Path("second-rest.md"), body_markdown="Hi.\n"
    )
    issue = render_issue(article, NAV, settings, archive_url="https://x.example/archive/2")
    top, bottom = issue_frame(_pages(settings), issue.subject, NAV)

    assert NAV.previous is not None and NAV.next is not None
    for link in (NAV.previous, NAV.next):
        escaped = html.escape(link.title, quote=False)
        assert escaped in issue.html and escaped in bottom
        assert link.title in issue.text
        assert f'href="{link.url}"' in issue.html and f'href="{link.url}"' in bottom
        assert link.url in issue.text
    assert "The Art of Rest" in issue.text and "The Art of Rest" in bottom
    # The one "coming next" state: the email announces the unsent neighbour with its date,
    # the archive marks the same neighbour (and only it) as coming soon.
    assert "Coming next: Rest Three: Breathing — Tue 8 Dec" in issue.text
    assert "Coming soon" in bottom.split('rel="next"')[1].split("</p>")[0]
    assert "Coming soon" not in bottom.split('rel="prev"')[1].split("</p>")[0]
    assert "Rest Three" not in top  # the top bar is the subject only


def test_relinked_changes_only_the_urls() -> None:
    archive = NAV.relinked(lambda link: f"https://news.example/archive/{link.slug}")
    assert archive.previous is not None and archive.next is not None
    assert archive.previous.url == "https://news.example/archive/first-rest"
    assert archive.next.url == "https://news.example/archive/third-rest"
    assert archive.series_title == NAV.series_title == "The Art of Rest"
    assert (archive.previous.title, archive.next.planned_at) == (
        "Rest <One> & Sleep",
        NAV.next.planned_at if NAV.next else None,
    )


def test_planned_date_only_for_a_neighbour_not_sent_yet() -> None:
    assert NAV.next is not None and NAV.previous is not None
    assert NAV.next.planned == "Mon 7 Dec"  # in the record's own timezone (UTC)
    local = NAV.in_timezone(ZoneInfo("Australia/Sydney"))
    assert local.next is not None and local.next.planned == "Tue 8 Dec"
    assert NAV.previous.planned is None
    sent_with_date = SeriesLink("x", "X", "https://x.example", True, NAV.next.planned_at)
    assert sent_with_date.planned is None
