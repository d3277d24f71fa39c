"""Feed import: RSS/Atom files and a loopback HTTP server into article files.

Constants and plain helpers shared by the tests/feeds/test_feed_*.py modules: the
feed files in tests/data/feeds, `run` (one import), and `Item`/`rss` (a feed built
in the test). The `articles` and `sessions` fixtures are in conftest.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session, sessionmaker

from pipeline.feeds import FeedImportReport, ImportOptions, import_feed

FEEDS = Path(__file__).resolve().parents[1] / "data" / "feeds"
SYDNEY = ZoneInfo("Australia/Sydney")
BLOG = "https://www.cloudformmassage.com.au/blog"
SERIES_LINKS = [
    f"{BLOG}/massage-and-mental-health",
    f"{BLOG}/hip-pain-massage-therapy",
    f"{BLOG}/massage-guns-are-they-worth-it",
]
#: What must never reach a file or an email from a feed.
HOSTILE = re.compile(
    r"<script|<style|<iframe|<form|<input|<object|<embed|<svg|<math|<meta|<base|<link|<button"
    r"|\bon[a-z]+\s*=|javascript:|vbscript:|data:|alert\(",
    re.IGNORECASE,
)

#: The same, less the <style> and <meta> the email design carries itself.
IN_EMAIL = re.compile(HOSTILE.pattern.replace("<style|", "").replace("<meta|", ""), re.IGNORECASE)


def run(
    source: str | Path,
    articles: Path,
    sessions: sessionmaker[Session] | None = None,
    *,
    series: str = "imported",
    sent: tuple[str, ...] = (),
    **options: object,
) -> FeedImportReport:
    return import_feed(
        str(source),
        ImportOptions(series=series, **options),  # type: ignore[arg-type]
        articles_dir=articles,
        tz=SYDNEY,
        sessions=sessions,
        sent_slugs=sent,
    )


def front_and_body(path: Path) -> tuple[str, str]:
    _, front, body = path.read_text(encoding="utf-8").split("---\n", 2)
    return front, body


@dataclass(frozen=True)
class Item:
    title: str
    link: str | None
    guid: str | None = None
    date: datetime | None = None
    body: str = "Text."


def rss(items: list[Item]) -> str:
    parts = ['<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>T</title>']
    for item in items:
        parts.append("<item>")
        parts.append(f"<title>{escape(item.title)}</title>")
        if item.link is not None:
            parts.append(f"<link>{escape(item.link)}</link>")
        if item.guid is not None:
            parts.append(f'<guid isPermaLink="false">{escape(item.guid)}</guid>')
        if item.date is not None:
            moment = item.date.replace(tzinfo=UTC)
            parts.append(f"<pubDate>{format_datetime(moment)}</pubDate>")
        parts.append(f"<description>{escape(item.body)}</description></item>")
    parts.append("</channel></rss>")
    return "".join(parts)
