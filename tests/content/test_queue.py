"""The send queue (pipeline.content.queue): order, due article, planned dates, and one place.

The last test is the point of the module: ``schedule list``, ``newsletter
queue`` (``Newsletter.planned``) and the scheduler's recurring firing
(``jobs.send_due``) read the same fixture and must agree on what goes out at
each firing, because all three ask :mod:`pipeline.content.queue`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from pipeline.cli.schedule import schedule_listing
from pipeline.config import load_settings
from pipeline.content.articles import Article
from pipeline.content.queue import (
    Firing,
    next_due,
    planned_dates,
    queue_order,
    upcoming_firings,
)
from pipeline.newsletter import Newsletter
from pipeline.schedule.crontab import cron_trigger
from pipeline.schedule.jobs import send_due, send_scheduled_due
from pipeline.store.oneoffs import OneOffStore
from pipeline.subscribers import import_csv
from tests.helpers import SAMPLE_SLUG, FixedClock, copy_sample_folder

SYDNEY = ZoneInfo("Australia/Sydney")
TUESDAYS = cron_trigger("0 9 * * tue", SYDNEY)
NOW = datetime(2026, 11, 25, 12, tzinfo=SYDNEY)  # a Wednesday
TUE_1, TUE_8, TUE_15, TUE_22, TUE_29 = (
    datetime(2026, 12, day, 9, tzinfo=SYDNEY) for day in (1, 8, 15, 22, 29)
)
PART_1 = "massage-and-mental-health"
PART_2 = SAMPLE_SLUG
PART_3 = "massage-guns-are-they-worth-it"


def make(
    slug: str,
    series: str | None = None,
    part: int | None = None,
    send_after: datetime | None = None,
) -> Article:
    return Article(
        slug=slug,
        title=slug,
        path=Path(f"{slug}.md"),
        body_markdown="",
        series=series,
        part=part,
        send_after=send_after,
    )


def slugs(articles: list[Article]) -> list[str]:
    return [a.slug for a in articles]


# -- pure functions --------------------------------------------------------------------


def test_the_order_puts_send_after_last_and_parts_in_order() -> None:
    late_part_1 = make("s1", "s", 1, send_after=datetime(2026, 12, 20, tzinfo=SYDNEY))
    part_2 = make("s2", "s", 2)
    loose = make("loose", send_after=datetime(2026, 12, 5, tzinfo=SYDNEY))
    plain = make("plain")
    order = queue_order([part_2, loose, late_part_1, plain], sent_slugs={"gone"})
    # Part 2 has no send_after but waits right behind its part 1.
    assert slugs(order) == ["plain", "loose", "s1", "s2"]
    # Once part 1 has gone, part 2 takes its own place (no send_after: before "loose").
    assert slugs(queue_order([part_2, loose, late_part_1, plain], sent_slugs={"s1"})) == [
        "plain",
        "s2",
        "loose",
    ]


def test_a_one_off_holds_its_article_and_later_parts_until_its_time() -> None:
    s1, s2, other = make("s1", "s", 1), make("s2", "s", 2), make("other", send_after=TUE_8)
    queue = queue_order([s1, s2, other], ())
    assert queue == [s1, s2, other]
    assert next_due(queue, TUE_1) == s1
    # Held for its one-off, part 1 is not due, and part 2 may not overtake it.
    assert next_due(queue, TUE_1, {"s1": TUE_15}) is None
    assert next_due(queue, TUE_8, {"s1": TUE_15}) == other
    # From the one-off's time on, a firing may take it (if the one-off has not fired).
    assert next_due(queue, TUE_15, {"s1": TUE_15}) == s1


def test_a_one_off_earlier_than_send_after_still_waits_for_send_after() -> None:
    article = make("a", send_after=TUE_15)
    assert next_due([article], TUE_8, {"a": TUE_1}) is None
    assert next_due([article], TUE_15, {"a": TUE_1}) == article


def test_planned_dates_with_send_after_and_one_offs() -> None:
    queue = queue_order(
        [
            make("s1", "s", 1),
            make("s2", "s", 2),
            make("news", send_after=datetime(2026, 12, 5, tzinfo=SYDNEY)),
            make("tips"),
        ],
        (),
    )
    one_off = datetime(2026, 12, 3, 10, 30, tzinfo=SYDNEY)
    planned = planned_dates(queue, TUESDAYS, NOW, {"s1": one_off})
    assert planned == {
        "s1": one_off,  # its own time
        "tips": TUE_1,  # s2 waits behind s1's one-off; "news" is not due yet
        "s2": TUE_8,  # s1 went out on the 3rd
        "news": TUE_15,
    }


def test_upcoming_firings_name_the_article_each_sends() -> None:
    queue = queue_order([make("a"), make("b", send_after=TUE_15)], ())
    firings = upcoming_firings(queue, TUESDAYS, NOW, {"a": TUE_8 + timedelta(hours=1)}, 4)
    assert firings == [
        Firing(TUE_1, None),  # "a" waits for its one-off, "b" for its send_after
        Firing(TUE_8, None),
        Firing(TUE_15, "b"),
        Firing(TUE_22, None),
    ]


# -- one place: the listing, the planned dates and the scheduler agree --------------------


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The sample folder (parts 1-3 of a series) plus a loose article with a send_after."""
    for name in ("NEWSLETTER_DATABASE_URL", "NEWSLETTER_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NEWSLETTER_SECRET_KEY", "queue-test-secret")
    path = copy_sample_folder(tmp_path / "clinic")
    (path.parent / "articles" / "clinic-news.md").write_text(
        '---\ntitle: "Clinic news"\nsend_after: 2026-12-05\n---\nWe have moved.\n',
        encoding="utf-8",
    )
    newsletter = Newsletter(load_settings(path))
    import_csv(newsletter.sessions, path.parent / "sample-subscribers.csv")
    newsletter.close()
    return path


def test_the_listing_the_planned_dates_and_the_scheduler_agree(config: Path) -> None:
    newsletter = Newsletter(load_settings(config), clock=FixedClock(NOW.astimezone(UTC)))
    one_off = datetime(2026, 12, 3, 10, 30, tzinfo=SYDNEY)
    OneOffStore(newsletter.sessions).schedule(PART_1, one_off, NOW)
    try:
        listing = schedule_listing(newsletter, 5)
        queue = newsletter.queue()
        planned = {entry.slug: entry.planned_at for entry in queue}
    finally:
        newsletter.close()
    # What the owner is shown.
    assert [(f.at, f.slug) for f in listing.firings] == [
        (TUE_1, None),  # part 1 waits for its one-off, clinic-news for the 5th
        (TUE_8, PART_2),
        (TUE_15, PART_3),
        (TUE_22, "clinic-news"),
        (TUE_29, None),
    ]
    assert planned == {PART_1: one_off, PART_2: TUE_8, PART_3: TUE_15, "clinic-news": TUE_22}
    # ``newsletter queue`` and ``schedule list`` say the same for every recurring firing.
    by_firing = {at: slug for slug, at in planned.items() if at != one_off}
    assert [f.slug for f in listing.firings] == [by_firing.get(f.at) for f in listing.firings]

    # What the scheduler does, firing by firing, at the times shown.
    sent_at: dict[str, datetime] = {}
    for firing in listing.firings:
        if firing.at > one_off and PART_1 not in sent_at:
            assert send_scheduled_due(str(config), now=one_off) == [PART_1]
            sent_at[PART_1] = one_off
        report = send_due(str(config), now=firing.at)
        picked = report.counts.slug if report is not None else None
        assert picked == firing.slug, f"the scheduler sent {picked} at {firing.at}"
        if picked is not None:
            sent_at[picked] = firing.at
    assert sent_at == planned
