"""What an import is asked to do and what it reports, and the records between the steps.

:class:`ImportOptions` (with :func:`parse_since` for ``--since``) is the request,
:class:`FeedImportReport` the answer; a parsed feed is a :class:`ParsedFeed` of
:class:`FeedItem` entries. :class:`FeedError` is the one-line failure every step raises.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import Final
from zoneinfo import ZoneInfo

from pipeline.content.articles import SLUG_PATTERN, ArticleStatus
from pipeline.errors import PipelineError

DEFAULT_TIMEOUT: Final = 20.0


class FeedError(PipelineError, ValueError):
    """A feed cannot be imported at all, or an option is unusable; one line."""


@dataclass(frozen=True)
class ImportOptions:
    """What ``import-feed`` was asked to do."""

    series: str
    status: ArticleStatus = "queued"
    #: Only entries published at or after this moment.
    since: datetime | None = None
    #: At most this many new articles, oldest first (the next run takes the next ones).
    limit: int | None = None
    #: Rewrite articles whose entry changed on the blog, unless already sent.
    update: bool = False
    timeout: float = DEFAULT_TIMEOUT

    def __post_init__(self) -> None:
        if not SLUG_PATTERN.fullmatch(self.series):
            raise FeedError(
                f"--series must be lowercase letters, digits and hyphens, not {self.series!r}"
            )
        if self.limit is not None and self.limit < 1:
            raise FeedError(f"--limit must be 1 or more, not {self.limit}")
        if self.timeout <= 0:
            raise FeedError(f"--timeout must be more than 0 seconds, not {self.timeout:g}")


@dataclass(frozen=True)
class ImportedArticle:
    """One article file the import wrote, or found changed in the feed."""

    slug: str
    title: str
    path: Path
    part: int | None
    #: Already sent to subscribers (so never rewritten).
    sent: bool = False


@dataclass(frozen=True)
class FeedImportReport:
    """What one ``import-feed`` run did; ``problems`` are one line each."""

    source: str
    added: tuple[ImportedArticle, ...] = ()
    #: Changed in the feed and left as they are (no ``--update``, or already sent).
    changed: tuple[ImportedArticle, ...] = ()
    updated: tuple[ImportedArticle, ...] = ()
    unchanged: int = 0
    #: Imported before, then deleted by a writer: not brought back.
    removed: int = 0
    #: Outside ``--since`` or beyond ``--limit``: left for another run.
    held_back: int = 0
    problems: tuple[str, ...] = ()
    #: The server answered 304: nothing changed since the last import.
    not_modified: bool = False
    #: False when nothing could be read (no feed, or not one usable entry).
    readable: bool = True
    entries: int = 0


@dataclass(frozen=True)
class FeedItem:
    """One feed entry, read and converted, ready to become an article file."""

    position: int  # 1-based, in document order
    key: str
    title: str
    link: str
    body: str
    content_hash: str
    author: str | None = None
    summary: str | None = None
    image: str | None = None
    published: datetime | None = None

    def label(self) -> str:
        """How a message names this entry."""
        return f"entry {self.position} ({self.title!r})"


@dataclass(frozen=True)
class ParsedFeed:
    """What feedparser made of a document: usable entries and one line per problem."""

    items: tuple[FeedItem, ...]
    problems: tuple[str, ...]
    entries: int


def parse_since(text: str, tz: ZoneInfo) -> datetime:
    """``--since``: a date (its start, clinic time) or a date and time; raise :class:`FeedError`."""
    value = text.strip()
    try:
        if len(value) == 10:
            moment = datetime.combine(date.fromisoformat(value), time(0))
        else:
            moment = datetime.fromisoformat(value)
    except ValueError:
        raise FeedError(
            "--since must be a date (2024-01-31) or a date and time (2024-01-31 09:00),"
            f" not {text!r}"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=tz)
