"""Shared by the rendering tests: the sample issue's series navigation and URLs, and
small builders for a plain article and its rendered issue."""

from __future__ import annotations

import dataclasses
import re
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from pipeline.config import Settings
from pipeline.content.articles import Article
from pipeline.content.series import SeriesLink, SeriesNav
from pipeline.render import RenderedIssue, render_issue

ROOT = Path(__file__).resolve().parents[2]
SYDNEY = ZoneInfo("Australia/Sydney")
BASE = "http://127.0.0.1:8000"
ARCHIVE_URL = f"{BASE}/archive/hip-pain-massage-therapy"
PREVIOUS_URL = f"{BASE}/archive/massage-and-mental-health"
NEXT_URL = f"{BASE}/archive/massage-guns-are-they-worth-it"

SAMPLE_NAV = SeriesNav(
    series="massage-and-wellbeing",
    part=2,
    position=2,
    total=3,
    previous=SeriesLink("massage-and-mental-health", "Massage & Mental Health", PREVIOUS_URL, True),
    next=SeriesLink(
        "massage-guns-are-they-worth-it",
        "Massage Guns, Are they worth it?",
        NEXT_URL,
        False,
        planned_at=datetime(2026, 12, 8, 9, 0, tzinfo=SYDNEY),
    ),
)


def _article(**changes: object) -> Article:
    base = Article(
        slug="plain",
        title="Plain Article",
        path=Path("plain.md"),
        body_markdown="Some **words** and a [link](https://example.com/x).",
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def _render(
    settings: Settings, article: Article | None = None, nav: SeriesNav | None = None
) -> RenderedIssue:
    return render_issue(article or _article(), nav, settings, archive_url=f"{BASE}/archive/plain")


def _markup(html: str) -> str:
    """The HTML with attribute values blanked, so only real markup is left to search."""
    return re.sub(r'="[^"]*"', '=""', html)
