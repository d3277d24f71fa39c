"""The import itself: fetch or read, parse, then sort each entry out and write its file.

New entries become articles in publish order with the next free part numbers of
the series; known ones are unchanged, changed (rewritten with ``--update`` unless
sent) or removed by a writer (never brought back). The database remembers the
keys and the conditional-GET validators (:mod:`pipeline.store.feeds`).
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
from pydantic import ValidationError
from sqlalchemy.orm import Session, sessionmaker

from pipeline.content.articles import Article, load_articles
from pipeline.feeds.article_files import (
    _article_text,
    _new_fields,
    _rewrite,
    _updated_fields,
    _write_new,
)
from pipeline.feeds.fetch import fetch_url, is_url, read_file
from pipeline.feeds.parse import parse_feed
from pipeline.feeds.records import (
    FeedError,
    FeedImportReport,
    FeedItem,
    ImportedArticle,
    ImportOptions,
    ParsedFeed,
)
from pipeline.feeds.slugs import slug_for
from pipeline.feeds.text import _one_line
from pipeline.store.feeds import FeedState


def import_feed(
    source: str,
    options: ImportOptions,
    *,
    articles_dir: Path,
    tz: ZoneInfo,
    sessions: sessionmaker[Session] | None = None,
    sent_slugs: Collection[str] = (),
    transport: httpx.BaseTransport | None = None,
) -> FeedImportReport:
    """Import ``source`` (an http(s) URL or a file) into ``articles_dir``; never raises
    for a bad feed or entry: those are the report's ``problems``.

    New entries become articles in publish order with the next free part numbers
    of ``options.series``. ``sent_slugs`` are never rewritten by ``--update``.
    """
    if not articles_dir.is_dir():
        problem = f"{articles_dir}: articles folder not found; nothing imported"
        return FeedImportReport(source=source, problems=(problem,), readable=False)
    state = FeedState(sessions)
    remote = is_url(source)
    try:
        if remote:
            etag, last_modified = state.validators(source)
            document = fetch_url(
                source,
                etag=etag,
                last_modified=last_modified,
                timeout=options.timeout,
                transport=transport,
            )
        else:
            document = read_file(source)
        if document.not_modified:
            return FeedImportReport(source=source, not_modified=True)
        feed = parse_feed(document, source)
    except FeedError as exc:
        if remote:
            state.remember(source, None, None)
        return FeedImportReport(source=source, problems=(str(exc),), readable=False)

    result = _Import(source, options, articles_dir, tz, state, sent_slugs).run(feed)
    if remote:
        # Only a run that took in everything may skip the next download: after a
        # --limit, a --since or an edit not yet applied, the next run must see it all.
        complete = result.held_back == 0 and not result.incomplete
        if complete:
            state.remember(source, document.etag, document.last_modified)
        else:
            state.remember(source, None, None)
    readable = bool(feed.items) or feed.entries == 0
    return FeedImportReport(
        source=source,
        added=tuple(result.added),
        changed=tuple(result.changed),
        updated=tuple(result.updated),
        unchanged=result.unchanged,
        removed=result.removed,
        held_back=result.held_back,
        problems=feed.problems + tuple(result.problems),
        readable=readable,
        entries=feed.entries,
    )


class _Import:
    """One run's bookkeeping: which entries are new, changed or known, and the writes."""

    def __init__(
        self,
        source: str,
        options: ImportOptions,
        articles_dir: Path,
        tz: ZoneInfo,
        state: FeedState,
        sent_slugs: Collection[str],
    ) -> None:
        self.source = source
        self.options = options
        self.directory = articles_dir
        self.state = state
        self.sent = set(sent_slugs)
        found = load_articles(articles_dir, tz)
        self.by_key = {a.feed_key: a for a in found.articles if a.feed_key}
        self.known = state.entries()
        self.taken = {a.slug for a in found.articles}
        self.taken |= (
            {p.stem for p in articles_dir.glob("*.md")} if articles_dir.is_dir() else set()
        )
        self.next_part = 1 + max(
            (a.part or 0 for a in found.articles if a.series == options.series), default=0
        )
        self.added: list[ImportedArticle] = []
        self.changed: list[ImportedArticle] = []
        self.updated: list[ImportedArticle] = []
        self.unchanged = 0
        self.removed = 0
        self.held_back = 0
        self.problems: list[str] = []
        self.incomplete = False
        self.recorded: dict[str, tuple[str, str]] = {}

    def run(self, feed: ParsedFeed) -> _Import:
        """Sort out every item, write what is new or to update, and record the keys."""
        seen: set[str] = set()
        for item in _publish_order(feed.items):
            if item.key in seen:
                self.problems.append(
                    f"{self.source}: {item.label()}: same guid or link as an earlier entry; skipped"
                )
                continue
            seen.add(item.key)
            since = self.options.since
            if since is not None and (item.published is None or item.published < since):
                self.held_back += 1
                continue
            self._one(item)
        self.state.record(self.recorded, self.source)
        return self

    def _one(self, item: FeedItem) -> None:
        article = self.by_key.get(item.key)
        if article is not None:
            self._known(item, article)
            return
        if item.key in self.known:
            slug = self.known[item.key]
            if (self.directory / f"{slug}.md").exists():
                self.unchanged += 1
                self.problems.append(
                    f"{self.source}: {item.label()}: imported before as {slug}.md, which"
                    " cannot be read (see `newsletter check`); left as is"
                )
            else:
                self.removed += 1
            return
        if self.options.limit is not None and len(self.added) >= self.options.limit:
            self.held_back += 1
            return
        self._add(item)

    def _known(self, item: FeedItem, article: Article) -> None:
        if item.key not in self.known:
            # a file from before this database (a fresh clone): let the database catch up
            self.recorded[item.key] = (article.slug, article.feed_hash or "")
        if article.feed_hash == item.content_hash:
            self.unchanged += 1
            return
        sent = article.slug in self.sent
        record = ImportedArticle(article.slug, item.title, article.path, article.part, sent)
        if not self.options.update or sent:
            self.changed.append(record)
            self.incomplete = self.incomplete or not sent
            return
        try:
            _rewrite(article.path, _article_text(item, _updated_fields(item, article)))
        except (OSError, ValidationError) as exc:
            self._failed(item, f"cannot rewrite {article.path.name}", exc)
            return
        self.updated.append(record)
        self.recorded[item.key] = (article.slug, item.content_hash)

    def _add(self, item: FeedItem) -> None:
        try:
            text = _article_text(item, _new_fields(item, self.options, self.next_part))
            slug, path = _write_new(
                self.directory, slug_for(item.link, item.title), text, self.taken
            )
        except (OSError, ValidationError) as exc:
            self._failed(item, "cannot write its article", exc)
            return
        self.taken.add(slug)
        self.added.append(ImportedArticle(slug, item.title, path, self.next_part))
        self.recorded[item.key] = (slug, item.content_hash)
        self.next_part += 1

    def _failed(self, item: FeedItem, what: str, exc: Exception) -> None:
        if isinstance(exc, ValidationError):
            why = "; ".join(str(error["msg"]) for error in exc.errors())
        else:
            why = getattr(exc, "strerror", None) or str(exc)
        self.problems.append(f"{self.source}: {item.label()}: {what} ({_one_line(why)}); skipped")
        self.incomplete = True


def _publish_order(items: tuple[FeedItem, ...]) -> list[FeedItem]:
    # Oldest first. Feeds list newest first, so among equal (or missing) dates
    # the later position is the older entry; undated entries go last.
    far_future = datetime.max.replace(tzinfo=UTC)
    return sorted(items, key=lambda i: (i.published or far_future, -i.position))
