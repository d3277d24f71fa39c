"""Feed import state: conditional-GET validators per feed URL and the imported entries' keys.

The keys make an import idempotent across clones of the articles folder; the
validators let an unchanged feed cost one 304.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from pipeline.store.models import FeedEntry, FeedSource, utcnow


class FeedState:
    """Conditional-GET validators per feed and the keys of imported entries.

    Without a database (``sessions`` None) nothing is remembered here; the
    front matter's ``feed_key`` still keeps imports idempotent.
    """

    def __init__(self, sessions: sessionmaker[Session] | None) -> None:
        self.sessions = sessions

    def validators(self, url: str) -> tuple[str | None, str | None]:
        """The ETag and Last-Modified the server sent last time, if any."""
        if self.sessions is None:
            return None, None
        with self.sessions() as session:
            row = session.scalar(select(FeedSource).where(FeedSource.url == url))
            return (row.etag, row.last_modified) if row else (None, None)

    def remember(self, url: str, etag: str | None, last_modified: str | None) -> None:
        """Store (or with both None, forget) the validators for the next fetch of ``url``."""
        if self.sessions is None:
            return
        with self.sessions.begin() as session:
            row = session.scalar(select(FeedSource).where(FeedSource.url == url))
            if row is None:
                row = FeedSource(url=url)
                session.add(row)
            row.etag, row.last_modified, row.fetched_at = etag, last_modified, utcnow()

    def entries(self) -> dict[str, str]:
        """Every imported entry's key, with the slug it became."""
        if self.sessions is None:
            return {}
        with self.sessions() as session:
            rows = session.execute(select(FeedEntry.key, FeedEntry.slug))
            return {key: slug for key, slug in rows}

    def record(self, entries: Mapping[str, tuple[str, str]], feed_url: str) -> None:
        """Remember entries (key -> (slug, content hash)) as imported."""
        if self.sessions is None or not entries:
            return
        with self.sessions.begin() as session:
            session.execute(delete(FeedEntry).where(FeedEntry.key.in_(list(entries))))
            for key, (slug, content_hash) in entries.items():
                session.add(
                    FeedEntry(key=key, slug=slug, feed_url=feed_url, content_hash=content_hash)
                )
