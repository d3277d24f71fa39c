"""The dashboard's subscriber search and person lookup, on SQLite and PostgreSQL: a substring
of the address in any case, ``%`` and ``_`` taken literally, paged in address order."""

from __future__ import annotations

from pipeline.store.db import make_engine, make_sessionmaker, migrate
from pipeline.store.models import SubscriberStatus
from pipeline.store.subscriber_search import search_by_address, subscriber_detail
from pipeline.subscribers import add_subscriber, remove_subscriber

ADDRESSES = (
    "jo.smith@example.com",
    "ann_smith@example.org",
    "SMITHERS@Example.net",
    "100%real@example.com",
    "someone@else.example",
)


def test_search_and_lookup(database_url: str) -> None:
    engine = make_engine(database_url)
    migrate(engine)
    sessions = make_sessionmaker(engine)
    try:
        for address in ADDRESSES:
            add_subscriber(sessions, address, first_name="Pat", tags=("vip",))
        remove_subscriber(sessions, "jo.smith@example.com")

        found = search_by_address(sessions, " SMITH ", offset=0, limit=10)
        assert [r.email for r in found.rows] == [
            "ann_smith@example.org",
            "jo.smith@example.com",
            "smithers@example.net",
        ]
        assert found.total == 3
        assert found.rows[1].status is SubscriberStatus.UNSUBSCRIBED
        # Wildcards typed by the owner are letters.
        assert [r.email for r in search_by_address(sessions, "_", offset=0, limit=10).rows] == [
            "ann_smith@example.org"
        ]
        assert search_by_address(sessions, "100%", offset=0, limit=10).total == 1
        assert search_by_address(sessions, "n%s", offset=0, limit=10).total == 0
        # Pages: the same order, no overlap, the total on each.
        first = search_by_address(sessions, "example", offset=0, limit=2)
        second = search_by_address(sessions, "example", offset=2, limit=2)
        third = search_by_address(sessions, "example", offset=4, limit=2)
        assert first.total == second.total == third.total == 5
        emails = [r.email for page in (first, second, third) for r in page.rows]
        assert emails == sorted(a.lower() for a in ADDRESSES)

        ann = subscriber_detail(sessions, email="ann_smith@example.org")
        assert ann is not None and ann.first_name == "Pat" and ann.tags == ("vip",)
        assert ann.status is SubscriberStatus.ACTIVE and ann.source == "cli"
        same = subscriber_detail(sessions, subscriber_id=ann.id)
        assert same == ann
        assert subscriber_detail(sessions, email="nobody@example.com") is None
        assert subscriber_detail(sessions, subscriber_id=10_000) is None
    finally:
        engine.dispose()
