"""The catch-up track, simulated: ten weeks, a six-part weekly series, people joining any time.

The clock is injected; the days are played as the scheduler plays them (the
live part on Tuesdays at 09:00 Sydney, the catch-up pass every day at 09:00),
with the order of those two at the slot chosen by hypothesis too. Everything
is read back from the ledger, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from pipeline.schedule.catch_up_track import run_pass
from pipeline.store.models import Delivery, DeliveryStatus, Subscriber
from pipeline.store.oneoffs import OneOffStore
from tests.databases import PostgresServer
from tests.schedule.catch_up_world import (
    PARTS,
    START,
    SYDNEY,
    World,
    local_day,
    part_slug,
)

FIRST_SLOT = datetime(2026, 12, 1, 9, 0, tzinfo=SYDNEY)  # part 1, live
LAST_LIVE = FIRST_SLOT + timedelta(weeks=PARTS - 1)  # part 6, live
DAYS = 70  # ten weeks
JOIN_DAYS = 49  # people join in the first seven weeks: all caught up by day 70


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[object]:
    """A factory of fresh empty databases (one per hypothesis example)."""
    if request.param == "sqlite":

        def sqlite() -> str:
            return f"sqlite:///{tmp_path / uuid.uuid4().hex}.db"

        yield sqlite
    else:
        server: PostgresServer = request.getfixturevalue("postgres_server")
        yield server.create_database


joins = st.lists(
    st.tuples(
        st.integers(0, JOIN_DAYS - 1),
        # Midnight, just before, at and just after the send time, the evening.
        st.sampled_from([0, 8 * 60 + 59, 9 * 60 + 1, 13 * 60, 23 * 60 + 59]),
    ),
    min_size=1,
    max_size=6,
)


def _play(world: World, people: list[tuple[datetime, str]], live_first: bool) -> None:
    """Ten weeks: joins at their minute, the send slot at 09:00 every day."""
    pending = sorted(people)
    for n in range(DAYS):
        day = START.date() + timedelta(days=n)
        slot = world.slot(day)
        while pending and pending[0][0] < slot:
            moment, email = pending.pop(0)
            world.at(moment)
            world.join(email)
        world.at(slot)
        world.send_slot(live_first=live_first)
    assert not pending


# The fixture is a factory of fresh databases: each example makes its own.
@settings(
    max_examples=15,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(joined=joins, live_first=st.booleans())
def test_ten_weeks_every_part_once_in_order_one_email_a_day(
    fresh_url: object,
    tmp_path_factory: pytest.TempPathFactory,
    joined: list[tuple[int, int]],
    live_first: bool,
) -> None:
    assert callable(fresh_url)
    world = World(tmp_path_factory.mktemp("clinic"), fresh_url())
    try:
        early = (START, "early@example.com")  # before part 1
        people = [early] + [
            (START + timedelta(days=d, minutes=m), f"p{i}@example.com")
            for i, (d, m) in enumerate(joined)
        ]
        _play(world, people, live_first)
        got: dict[str, list[tuple[int, datetime, bool]]] = defaultdict(list)
        for row in world.received():
            assert row.status is DeliveryStatus.SENT, row
            assert row.sent_at is not None
            got[row.email].append((row.part, row.sent_at, row.catch_up))
        for moment, email in people:
            mine = got[email]
            parts = [part for part, _at, _c in mine]
            # Each part once, in order, and every part by the end.
            assert parts == list(range(1, PARTS + 1)), (email, moment, mine)
            # Never two newsletter emails on one day (Sydney).
            sent_days = [local_day(at) for _p, at, _c in mine]
            assert len(set(sent_days)) == len(sent_days), (email, moment, mine)
            if moment < FIRST_SLOT:
                # Joined before part 1: the live sends only, exactly as before.
                assert [c for _p, _at, c in mine] == [False] * PARTS
                assert [at for _p, at, _c in mine] == [
                    FIRST_SLOT + timedelta(weeks=k) for k in range(PARTS)
                ]
            elif moment >= LAST_LIVE:
                # Joined after the last part: all six on their own track, from
                # the next send time, one every two days.
                first = _next_slot(world, moment)
                assert [at for _p, at, _c in mine] == [
                    first + timedelta(days=2 * k) for k in range(PARTS)
                ]
                assert all(c for _p, _at, c in mine)
    finally:
        world.close()


def _next_slot(world: World, moment: datetime) -> datetime:
    slot = world.slot(local_day(moment))
    return slot if slot > moment else world.slot(local_day(moment) + timedelta(days=1))


def test_a_late_joiner_gets_part_1_then_part_2_then_joins_the_live_part_3(
    database_url: str, tmp_path: Path
) -> None:
    """The issue's "done when": parts 1 and 2 out, someone joins, then 1, 2 (+2d), 3 live."""
    world = World(tmp_path / "clinic", database_url)
    try:
        world.join("early@example.com")
        for day in _dates(START.date(), 9):  # parts 1 (Tue 1 Dec) and 2 (Tue 8 Dec) go out
            world.at(world.slot(day))
            world.send_slot()
        world.at(world.slot(date(2026, 12, 8)) + timedelta(hours=3))
        world.join("late@example.com")
        for day in _dates(date(2026, 12, 9), 7):  # Wed 9 .. Tue 15 Dec (part 3, live)
            world.at(world.slot(day))
            world.send_slot()
        late = [
            (r.part, local_day(r.sent_at), r.catch_up)
            for r in world.received()
            if r.email == "late@example.com" and r.sent_at is not None
        ]
        assert late == [
            (1, date(2026, 12, 9), True),
            (2, date(2026, 12, 11), True),
            (3, date(2026, 12, 15), False),
        ]
        # A second pass the same day sends nothing.
        assert world.send_slot().people == 0
        # The navigation, from each reader's side (the text part as received).
        live_1 = world.received_text("early@example.com", 1)
        assert "Part 1 of 6 in Stretching" in live_1
        assert "Coming next: Stretching, part 2 — Tue 8 Dec" in live_1
        late_1 = world.received_text("late@example.com", 1)
        assert "Part 1 of 6 in Stretching" in late_1
        assert "Next: Stretching, part 2 — in your inbox on Fri 11 Dec" in late_1
        late_2 = world.received_text("late@example.com", 2)
        assert "Previous: Stretching, part 1" in late_2
        # Caught up after part 2: part 3 comes with everyone else, as in the live email.
        assert "Coming next: Stretching, part 3 — Tue 15 Dec" in late_2
        assert "in your inbox" not in world.received_text("early@example.com", 2)
    finally:
        world.close()


def test_the_database_refuses_a_second_row_of_an_article_for_one_person(
    database_url: str, tmp_path: Path
) -> None:
    """At most once, ever, is a unique key: a catch-up row beside a live one cannot exist."""
    world = World(tmp_path / "clinic", database_url)
    try:
        world.join("early@example.com")
        world.at(FIRST_SLOT)
        world.send_slot()
        campaign = world.newsletter.ledger.get_campaign(part_slug(1))
        assert campaign is not None
        with world.newsletter.sessions() as session:
            who = session.scalar(select(Subscriber.id))
        with pytest.raises(IntegrityError), world.newsletter.sessions.begin() as session:
            session.execute(
                insert(Delivery).values(
                    campaign_id=campaign.id,
                    subscriber_id=who,
                    status=DeliveryStatus.PENDING,
                    attempts=0,
                    catch_up_at=FIRST_SLOT,
                )
            )
        # --include-new cannot add them again either, nor put a catcher-up out of order.
        world.join("late@example.com")
        report = world.newsletter.send(part_slug(1), include_new=True)
        assert report.added == 1  # only the newcomer: part 1 is their first
    finally:
        world.close()


def _dates(start: date, count: int) -> list[date]:
    return [start + timedelta(days=n) for n in range(count)]


def test_a_pass_by_hand_before_a_standalone_one_off_leaves_its_readers_for_tomorrow(
    database_url: str, tmp_path: Path
) -> None:
    """One newsletter email a day, even when the pass runs before a live issue it knows
    nothing of: the afternoon's standalone one-off reaches everyone, so the morning's
    pass plans nobody, and the late joiner's part 1 comes the next day."""
    world = World(tmp_path / "clinic", database_url)
    try:
        world.join("early@example.com")
        world.at(world.slot(date(2026, 12, 1)))
        world.send_slot()  # part 1, live
        world.join("late@example.com")
        (world.config.parent / "articles" / "opening-hours.md").write_text(
            '---\ntitle: "New opening hours"\nsummary: "We open at eight."\n---\nFrom Monday.\n',
            encoding="utf-8",
        )
        wednesday = datetime(2026, 12, 2, 7, 0, tzinfo=SYDNEY)
        world.at(wednesday)
        OneOffStore(world.newsletter.sessions).schedule(
            "opening-hours", wednesday + timedelta(hours=8), world.clock.now
        )
        assert run_pass(world.newsletter).people == 0  # by hand, 07:00
        world.at(wednesday + timedelta(hours=8))
        world.newsletter.send("opening-hours")
        world.at(world.slot(date(2026, 12, 3)))
        assert [p.emails for p in run_pass(world.newsletter).parts] == [("late@example.com",)]
        by_day: dict[date, int] = defaultdict(int)
        with world.newsletter.sessions() as session:
            late = session.scalar(
                select(Subscriber.id).where(Subscriber.email == "late@example.com")
            )
            for sent_at, catch_up_at in session.execute(
                select(Delivery.sent_at, Delivery.catch_up_at).where(Delivery.subscriber_id == late)
            ):
                by_day[local_day(sent_at or catch_up_at)] += 1
        assert by_day == {date(2026, 12, 2): 1, date(2026, 12, 3): 1}
    finally:
        world.close()
