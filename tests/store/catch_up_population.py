"""A list at mixed positions in a series, written set-based, for the catch-up pass's scale checks.

Used by ``tests/store/test_catch_up_set_based.py`` (10 and 200 people) and by
``make bench`` (100,000): the same mix at any size, so the bench times the
population the test proves set-based. Rows are written in bulk (one
``executemany`` per 10,000 subscribers, one ``INSERT ... SELECT`` per part and
kind of person), never as ORM objects: 100,000 objects would take longer to
build than the pass takes to plan.

The series has six parts; parts 1-5 went out live, one a week, and today's
pass runs at 09:00 Sydney. Subscriber ``id`` n is of kind
``PATTERN[(n - 1) % 20]``; the first ten ids hold one of every kind, so even
ten people exercise every branch of the pass's rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Integer, String, insert, literal, select
from sqlalchemy.orm import Session, sessionmaker

from pipeline.store.catch_up import Day, SeriesTrack
from pipeline.store.db import refresh_statistics
from pipeline.store.models import (
    Campaign,
    Delivery,
    DeliveryStatus,
    Subscriber,
    SubscriberStatus,
    UTCDateTime,
)

SYDNEY = ZoneInfo("Australia/Sydney")
#: Today's send slot: the pass being measured plans for it.
SLOT = datetime(2027, 1, 12, 9, 0, tzinfo=SYDNEY)
DAY = Day(
    start=SLOT.replace(hour=0, minute=0),
    end=SLOT.replace(hour=0, minute=0) + timedelta(days=1),
    slot=SLOT,
)
SENT_PARTS = 5
EVERY = timedelta(days=2)
LIMIT = 10

# What each kind holds: live parts (their rows have catch_up_at NULL) and
# catch-up parts with how many days before today's slot they went out.
# "due" says whether today's pass gives them their next part (one row each).
_KINDS: dict[str, tuple[tuple[int, ...], dict[int, int], bool]] = {
    "every part": ((1, 2, 3, 4, 5), {}, False),  # joined before part 1
    "behind 1": ((1, 2, 3, 4), {}, True),  # off the snapshot of part 5
    "behind 2": ((1, 2, 3), {}, True),
    "behind 3": ((1, 2), {}, True),
    "behind 4": ((1,), {}, True),
    "behind 5": ((), {}, True),  # joined after part 5: part 1 today
    "caught up yesterday": ((), {1: 1}, False),  # too recent for "2d"
    "caught up 2 days ago": ((), {1: 4, 2: 2}, True),  # part 3 today
    "caught up, then live": ((4, 5), {1: 30, 2: 28, 3: 26}, False),
    "left": ((1, 2), {}, False),  # unsubscribed after part 2
    "unconfirmed": ((), {}, False),  # pending double opt-in
}
#: 40% hold every part, 5% each behind by 1-5, 10% + 10% on the track
#: (too recent / due), 5% done catching up, 5% left, 5% unconfirmed.
PATTERN: tuple[str, ...] = (
    *("every part", "behind 1", "behind 2", "behind 3", "behind 4", "behind 5"),
    *("caught up yesterday", "caught up 2 days ago", "caught up, then live", "left"),
    *("every part",) * 6,
    *("caught up yesterday", "caught up 2 days ago", "unconfirmed", "every part"),
)
_STATUS = {"left": SubscriberStatus.UNSUBSCRIBED, "unconfirmed": SubscriberStatus.PENDING}
_CHUNK = 10_000


@dataclass(frozen=True)
class Population:
    """The series as the pass sees it, and how many rows today's pass must plan."""

    track: SeriesTrack
    expected_due: int
    deliveries: int


def _kind(subscriber_id: int) -> str:
    return PATTERN[(subscriber_id - 1) % len(PATTERN)]


def _part_time(part: int) -> datetime:
    """When live part ``part`` went out: part 5 a week before today, one a week before that."""
    return SLOT - timedelta(weeks=SENT_PARTS + 1 - part)


def build_population(sessions: sessionmaker[Session], count: int) -> Population:
    """Write the campaigns of parts 1-5 and ``count`` subscribers with their ledger rows."""
    with sessions.begin() as session:
        campaign_ids = tuple(
            int(
                session.execute(
                    insert(Campaign)
                    .values(
                        slug=f"bench-part-{part}",
                        subject=f"Part {part}",
                        html="<p>.</p>",
                        text=".",
                        transport="outbox",
                        created_at=_part_time(part),
                    )
                    .returning(Campaign.id)
                ).scalar_one()
            )
            for part in range(1, SENT_PARTS + 1)
        )
    with sessions.begin() as session:
        now = datetime(2026, 11, 1, tzinfo=UTC)
        for start in range(1, count + 1, _CHUNK):
            session.execute(
                insert(Subscriber),
                [
                    {
                        "id": n,
                        "email": f"reader{n:07d}@example.com",
                        "first_name": f"Reader{n}",
                        "status": _STATUS.get(_kind(n), SubscriberStatus.ACTIVE),
                        "tags": [],
                        "fields": {},
                        "created_at": now,
                        "updated_at": now,
                    }
                    for n in range(start, min(start + _CHUNK, count + 1))
                ],
            )
        deliveries = 0
        for part, campaign_id in enumerate(campaign_ids, start=1):
            deliveries += _ledger_rows(session, part, campaign_id)
    refresh_statistics(sessions, "campaigns", "subscribers", "deliveries")
    due = sum(1 for n in range(1, count + 1) if _KINDS[_kind(n)][2])
    track = SeriesTrack(series="bench", campaign_ids=campaign_ids, every=EVERY, limit=LIMIT)
    return Population(track=track, expected_due=due, deliveries=deliveries)


def _ledger_rows(session: Session, part: int, campaign_id: int) -> int:
    """Part ``part``'s rows, sent: one ``INSERT ... SELECT`` per kind of holder."""
    written = 0
    holders: dict[int | None, list[int]] = {}  # days ago (None: live) -> pattern slots
    for slot, kind in enumerate(PATTERN):
        live, caught, _due = _KINDS[kind]
        if part in live:
            holders.setdefault(None, []).append(slot)
        elif part in caught:
            holders.setdefault(caught[part], []).append(slot)
    for days_ago, slots in holders.items():
        catch_up_at = None if days_ago is None else SLOT - timedelta(days=days_ago)
        sent_at = _part_time(part) + timedelta(minutes=1) if catch_up_at is None else catch_up_at
        rows = select(
            literal(campaign_id, Integer),
            Subscriber.id,
            literal(DeliveryStatus.SENT.value, String),
            literal(1, Integer),
            literal(sent_at, UTCDateTime()),
            literal(catch_up_at, UTCDateTime()),
        ).where(((Subscriber.id - 1) % len(PATTERN)).in_(slots))
        result = session.execute(
            insert(Delivery).from_select(
                ["campaign_id", "subscriber_id", "status", "attempts", "sent_at", "catch_up_at"],
                rows,
            ),
            execution_options={"preserve_rowcount": True},
        )
        written += int(getattr(result, "rowcount", 0) or 0)
    return written
