"""The recurring trigger: what a crontab line means, and firing times across DST changes."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from pipeline.config import ScheduleSettings
from pipeline.schedule.crontab import next_firings
from pipeline.schedule.triggers import recurring_trigger
from tests.schedule.scheduler_helpers import SYDNEY

# -- the trigger: crontab meaning and DST -------------------------------------------


def test_tuesday_nine_sydney_stays_at_nine_across_both_dst_changes() -> None:
    trigger = recurring_trigger(ScheduleSettings(cron="0 9 * * tue", timezone="Australia/Sydney"))
    for start in (datetime(2027, 3, 20, tzinfo=UTC), datetime(2026, 9, 20, tzinfo=UTC)):
        firings = list(next_firings(trigger, start, 5))
        assert [f.strftime("%a %H:%M") for f in firings] == ["Tue 09:00"] * 5
        gaps = {(b.date() - a.date()).days for a, b in itertools.pairwise(firings)}
        assert gaps == {7}  # one a week: none skipped, none doubled
        offsets = [f.utcoffset() for f in firings]
        assert len(set(offsets)) == 2  # the change happened inside the window
    april = [f.isoformat() for f in next_firings(trigger, datetime(2027, 3, 27, tzinfo=UTC), 2)]
    assert april == ["2027-03-30T09:00:00+11:00", "2027-04-06T09:00:00+10:00"]


@pytest.mark.parametrize(
    "start", [datetime(2027, 4, 1, tzinfo=SYDNEY), datetime(2026, 10, 1, tzinfo=SYDNEY)]
)
def test_a_time_inside_the_changing_hour_fires_once_a_day(start: datetime) -> None:
    # 02:30 happens twice when Sydney falls back (2027-04-04) and not at all when
    # it springs forward (2026-10-04): either way exactly one send that day.
    trigger = recurring_trigger(ScheduleSettings(cron="30 2 * * *", timezone="Australia/Sydney"))
    firings = list(next_firings(trigger, start, 7))
    days = [f.astimezone(SYDNEY).date() for f in firings]
    assert days == [start.date() + timedelta(days=n) for n in range(7)]
    instants = [f.astimezone(UTC) for f in firings]
    assert instants == sorted(set(instants))


def test_a_sunday_crontab_zero_is_sunday() -> None:
    trigger = recurring_trigger(ScheduleSettings(cron="0 9 * * 0", timezone="Australia/Sydney"))
    firings = list(next_firings(trigger, datetime(2026, 11, 25, tzinfo=UTC), 3))
    assert [f.strftime("%a %H:%M") for f in firings] == ["Sun 09:00"] * 3
