"""Planning, listing and parsing: the schedule listing and queue, one-off times in clinic
time, the catch-up grace setting, and the JSON log lines."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pipeline.cli.schedule import parse_local_time, schedule_listing
from pipeline.config import ScheduleSettings
from pipeline.errors import PipelineError
from pipeline.logs import JsonFormatter
from pipeline.store.oneoffs import OneOffStore
from pipeline.store.scheduler_state import SchedulerStateStore
from tests.helpers import SAMPLE_SLUG
from tests.schedule.scheduler_fixtures import config_fixture  # noqa: F401 - registers it
from tests.schedule.scheduler_helpers import PART_1, PART_3, SYDNEY, open_folder

# -- planning, listing and parsing ----------------------------------------------------


def test_the_listing_shows_five_tuesdays_with_their_offsets(config: Path) -> None:
    newsletter = open_folder(config, now=datetime(2027, 3, 20, tzinfo=UTC))
    listing = schedule_listing(newsletter, 5)
    assert [f.at.isoformat() for f in listing.firings] == [
        "2027-03-23T09:00:00+11:00",
        "2027-03-30T09:00:00+11:00",
        "2027-04-06T09:00:00+10:00",
        "2027-04-13T09:00:00+10:00",
        "2027-04-20T09:00:00+10:00",
    ]
    assert [f.slug for f in listing.firings] == [PART_1, SAMPLE_SLUG, PART_3, None, None]


def test_queue_shows_one_offs_and_hides_plans_while_paused(config: Path) -> None:
    newsletter = open_folder(config, now=datetime(2026, 11, 25, tzinfo=UTC))
    at = datetime(2026, 11, 28, 10, 30, tzinfo=SYDNEY)
    OneOffStore(newsletter.sessions).schedule(PART_1, at, datetime(2026, 11, 25, tzinfo=UTC))
    planned = {e.slug: e.planned_at for e in newsletter.queue()}
    assert planned[PART_1] == at
    assert planned[SAMPLE_SLUG] == datetime(2026, 12, 1, 9, 0, tzinfo=SYDNEY)
    SchedulerStateStore(newsletter.sessions).set_paused(True, datetime(2026, 11, 25, tzinfo=UTC))
    assert {e.planned_at for e in newsletter.queue()} == {None}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-12-02 09:00", "2026-12-02T09:00:00+11:00"),
        ("2026-12-02 09:00:30", "2026-12-02T09:00:30+11:00"),
        ("2026-06-02T09:00", "2026-06-02T09:00:00+10:00"),
        ("2027-04-04 02:30", "2027-04-04T02:30:00+11:00"),  # repeated: the first one
    ],
)
def test_one_off_times_are_clinic_time(text: str, expected: str) -> None:
    assert parse_local_time(text, SYDNEY).isoformat() == expected


@pytest.mark.parametrize(
    ("text", "problem"),
    [("2026-10-04 02:30", "does not exist"), ("tomorrow", "expected"), ("2026-12-02", "expected")],
)
def test_bad_one_off_times_are_clear_errors(text: str, problem: str) -> None:
    with pytest.raises(PipelineError, match=problem):
        parse_local_time(text, SYDNEY)


def test_the_grace_setting_accepts_hours_minutes_and_plain_minutes() -> None:
    assert ScheduleSettings(catch_up_grace="6h").catch_up_grace == timedelta(hours=6)
    assert ScheduleSettings(catch_up_grace="1h30m").catch_up_grace == timedelta(minutes=90)
    assert ScheduleSettings(catch_up_grace=45).catch_up_grace == timedelta(minutes=45)
    assert ScheduleSettings().catch_up_grace == timedelta(hours=6)
    with pytest.raises(ValueError, match="duration"):
        ScheduleSettings(catch_up_grace="soon")


def test_json_log_lines_carry_the_extra_fields() -> None:
    record = logging.LogRecord("pipeline.scheduler", logging.INFO, "x", 1, "sent %d", (5,), None)
    record.slug = "hip-pain"
    entry = json.loads(JsonFormatter().format(record))
    assert entry["message"] == "sent 5" and entry["slug"] == "hip-pain"
    assert entry["level"] == "INFO" and entry["logger"] == "pipeline.scheduler"
    assert datetime.fromisoformat(entry["time"]).tzinfo is not None
