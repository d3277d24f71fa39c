"""``schedule list``'s catch-up sends: the next seven passes planned as the passes plan them.

The outlook is checked against the real passes played afterwards on the same
database, and it must leave nothing behind. SQLite and PostgreSQL.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.schedule.catch_up_outlook import CatchUpDue, catch_up_outlook, next_pass_day
from pipeline.store.models import Delivery
from tests.schedule.catch_up_world import SYDNEY, World, part_slug


def at(day: int, hour: int = 9) -> datetime:
    """``day`` December 2026 at ``hour`` Sydney time (Tuesdays: 1, 8, 15)."""
    return datetime(2026, 12, day, hour, 0, tzinfo=SYDNEY)


@pytest.fixture
def world(tmp_path: Path, database_url: str) -> Iterator[World]:
    """Parts 1 and 2 out; A and B behind by two parts, C by one (part 1 came on Tuesday)."""
    opened = World(tmp_path / "clinic", database_url)
    try:
        opened.join("early@example.com")
        opened.at(at(1))
        opened.send_slot()  # part 1 live
        opened.at(at(7, 12))
        opened.join("c@example.com")
        opened.at(at(8))
        opened.send_slot()  # part 2 live (C is behind: skipped), then C's part 1
        opened.at(at(8, 12))
        opened.join("a@example.com")
        opened.join("b@example.com")
        yield opened
    finally:
        opened.close()


def _stored_rows(world: World) -> int:
    with world.newsletter.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(Delivery)) or 0)


def _sends(due: list[CatchUpDue]) -> list[tuple[int, int | None, int]]:
    return [(d.at.astimezone(SYDNEY).day, d.part, d.people) for d in due]


def test_the_week_ahead_is_what_the_passes_then_plan_and_nothing_is_stored(
    world: World,
) -> None:
    before = _stored_rows(world)
    outlook = catch_up_outlook(world.newsletter)
    assert _stored_rows(world) == before  # rolled back
    # Wednesday A and B get part 1; Thursday C part 2 (two days after Tuesday);
    # Friday A and B part 2: only because Wednesday's simulated rows are seen.
    assert _sends(outlook) == [(9, 1, 2), (10, 2, 1), (11, 2, 2)]
    assert [d.slug for d in outlook] == [part_slug(1), part_slug(2), part_slug(2)]
    assert outlook[0].series == "stretching"
    assert outlook[0].at.isoformat() == "2026-12-09T09:00:00+11:00"
    assert catch_up_outlook(world.newsletter) == outlook  # and again: still nothing stored

    real: list[tuple[int, int | None, int]] = []
    for day in (9, 10, 11, 12, 13, 14):
        world.at(at(day))
        report = world.send_slot()
        real.extend((day, p.part, len(p.emails)) for p in report.parts)
    assert real == _sends(outlook)


def test_the_outlook_starts_tomorrow_once_todays_send_time_has_passed(world: World) -> None:
    schedule = world.newsletter.settings.schedule
    assert next_pass_day(at(9, 8), schedule).slot == at(9)
    assert next_pass_day(at(9, 9), schedule).slot == at(10)
    world.at(at(9, 10))  # Wednesday's pass never ran: the outlook does not pretend it did
    assert _sends(catch_up_outlook(world.newsletter)) == [(10, 1, 2), (10, 2, 1), (12, 2, 2)]


def test_schedule_list_shows_them(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    module = importlib.import_module("pipeline.cli.schedule")
    opened = module.Newsletter
    monkeypatch.setattr(module, "Newsletter", lambda settings: opened(settings, clock=world.clock))
    base = ["--config", str(world.config), "schedule", "list"]
    listed = CliRunner().invoke(app, [*base, "--json"], env=world.environ)
    assert listed.exit_code == 0, listed.output
    assert json.loads(listed.output)["catch_up_sends"] == [
        {
            "at": "2026-12-09T09:00:00+11:00",
            "series": "stretching",
            "part": 1,
            "slug": part_slug(1),
            "people": 2,
        },
        {
            "at": "2026-12-10T09:00:00+11:00",
            "series": "stretching",
            "part": 2,
            "slug": part_slug(2),
            "people": 1,
        },
        {
            "at": "2026-12-11T09:00:00+11:00",
            "series": "stretching",
            "part": 2,
            "slug": part_slug(2),
            "people": 2,
        },
    ]
    text = CliRunner().invoke(app, base, env=world.environ)
    assert text.exit_code == 0, text.output
    lines = text.output.splitlines()
    start = lines.index("Catch-up sends (next 7 days, if no live issue moves them):")
    assert lines[start + 1 : start + 4] == [
        f"  2026-12-09T09:00:00+11:00  stretching part 1 ({part_slug(1)}): 2 people",
        f"  2026-12-10T09:00:00+11:00  stretching part 2 ({part_slug(2)}): 1 person",
        f"  2026-12-11T09:00:00+11:00  stretching part 2 ({part_slug(2)}): 2 people",
    ]
