"""Crontab translation (0 and 7 are Sunday) and planned dates."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from pipeline.content.articles import Article
from pipeline.content.queue import planned_dates
from pipeline.errors import ConfigError
from pipeline.schedule.crontab import cron_trigger, next_firings, standard_weekdays

SYDNEY = ZoneInfo("Australia/Sydney")


@pytest.mark.parametrize(
    ("field", "days"),
    [
        ("0", [0]),
        ("7", [0]),
        ("sun", [0]),
        ("1-5", [1, 2, 3, 4, 5]),
        ("mon-fri", [1, 2, 3, 4, 5]),
        ("5-7", [0, 5, 6]),
        ("*/2", [0, 2, 4, 6]),
        ("1/2", [1, 3, 5]),
        ("tue,THU", [2, 4]),
    ],
)
def test_standard_weekdays(field: str, days: list[int]) -> None:
    assert standard_weekdays(field) == days


@pytest.mark.parametrize("field", ["8", "funday", "5-1", "*/x"])
def test_bad_weekday_is_a_config_error(field: str) -> None:
    with pytest.raises(ConfigError, match=r"schedule\.cron"):
        standard_weekdays(field)


def test_sunday_zero_fires_on_sunday() -> None:
    trigger = cron_trigger("0 9 * * 0", SYDNEY)
    firings = list(next_firings(trigger, datetime(2026, 11, 25, tzinfo=UTC), 3))
    assert [f.strftime("%a %H:%M") for f in firings] == ["Sun 09:00"] * 3


def test_tuesday_at_nine_sydney_keeps_local_time_across_dst() -> None:
    # Sydney leaves daylight saving on 2027-04-04: the offset changes, 09:00 does not.
    trigger = cron_trigger("0 9 * * tue", SYDNEY)
    firings = list(next_firings(trigger, datetime(2027, 3, 20, tzinfo=UTC), 4))
    assert [f.isoformat() for f in firings] == [
        "2027-03-23T09:00:00+11:00",
        "2027-03-30T09:00:00+11:00",
        "2027-04-06T09:00:00+10:00",
        "2027-04-13T09:00:00+10:00",
    ]


def test_day_of_month_or_weekday_follows_crontab_or_rule() -> None:
    # crontab: the 1st of the month OR any Monday.
    trigger = cron_trigger("0 9 1 * mon", SYDNEY)
    firings = list(next_firings(trigger, datetime(2026, 11, 25, tzinfo=SYDNEY), 3))
    assert [f.date().isoformat() for f in firings] == ["2026-11-30", "2026-12-01", "2026-12-07"]


def test_wrong_field_count() -> None:
    with pytest.raises(ConfigError, match="5 fields"):
        cron_trigger("0 9 * *", SYDNEY)


def _article(slug: str, send_after: datetime | None = None) -> Article:
    return Article(
        slug=slug, title=slug, path=Path(f"{slug}.md"), body_markdown="", send_after=send_after
    )


def test_planned_dates_respect_send_after_and_queue_order() -> None:
    trigger = cron_trigger("0 9 * * tue", SYDNEY)
    now = datetime(2026, 11, 25, 12, tzinfo=SYDNEY)
    queue = [
        _article("waits", send_after=datetime(2026, 12, 10, tzinfo=SYDNEY)),
        _article("first"),
        _article("second"),
    ]
    planned = planned_dates(queue, trigger, now)
    assert planned["first"].date().isoformat() == "2026-12-01"
    assert planned["second"].date().isoformat() == "2026-12-08"
    assert planned["waits"].date().isoformat() == "2026-12-15"


def test_a_one_off_holds_back_the_later_parts_of_its_series() -> None:
    trigger = cron_trigger("0 9 * * tue", SYDNEY)
    now = datetime(2026, 11, 25, 12, tzinfo=SYDNEY)
    part1 = Article(slug="p1", title="1", path=Path("p1.md"), body_markdown="", series="s", part=1)
    part2 = Article(slug="p2", title="2", path=Path("p2.md"), body_markdown="", series="s", part=2)
    late = datetime(2026, 12, 10, 9, tzinfo=SYDNEY)  # a Thursday, after two Tuesdays
    planned = planned_dates([part1, part2], trigger, now, {"p1": late})
    assert planned["p1"] == late
    # Part 2 waits for part 1's one-off, then takes the next Tuesday.
    assert planned["p2"].date().isoformat() == "2026-12-15"
