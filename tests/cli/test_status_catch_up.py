"""``status`` counts catch-up sends per article beside the live campaign (SQLite, PostgreSQL)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.schedule.catch_up_track import run_pass
from tests.schedule.catch_up_world import SYDNEY, World, part_slug


@pytest.fixture
def world(tmp_path: Path, database_url: str) -> Iterator[World]:
    """Part 1 live to one reader; three late joiners: one caught up, two planned but not sent."""
    opened = World(tmp_path / "clinic", database_url)
    try:
        opened.join("early@example.com")
        opened.at(datetime(2026, 12, 1, 9, 0, tzinfo=SYDNEY))
        opened.send_slot()  # part 1 live
        opened.join("late1@example.com")
        opened.at(datetime(2026, 12, 2, 9, 0, tzinfo=SYDNEY))
        opened.send_slot()  # late1 gets part 1
        opened.at(datetime(2026, 12, 2, 12, 0, tzinfo=SYDNEY))
        opened.join("late2@example.com")
        opened.join("late3@example.com")
        opened.at(datetime(2026, 12, 3, 9, 0, tzinfo=SYDNEY))
        # The pass plans late2's and late3's part 1, then stops before sending (as
        # after a crash between the two): their rows wait, pending, for the next run.
        report = run_pass(opened.newsletter, send=lambda slug: None)
        assert report.people == 2
        yield opened
    finally:
        opened.close()


def test_status_json_adds_catch_up_planned_and_sent_per_campaign(world: World) -> None:
    env = world.environ
    result = CliRunner().invoke(app, ["--config", str(world.config), "status", "--json"], env=env)
    assert result.exit_code == 0, result.output
    shown = {c["slug"]: c for c in json.loads(result.output)}
    assert list(shown) == [part_slug(1)]  # only part 1 has gone out
    part_1 = shown[part_slug(1)]
    assert part_1["catch_up"] == {"planned": 3, "sent": 1}
    # Catch-up sends are rows of the article's own campaign: in its counts too.
    assert (part_1["planned"], part_1["sent"], part_1["pending"]) == (4, 2, 2)

    one = CliRunner().invoke(
        app, ["--config", str(world.config), "status", part_slug(1), "--json"], env=env
    )
    assert one.exit_code == 0, one.output
    assert json.loads(one.output)["catch_up"] == {"planned": 3, "sent": 1}


def test_status_prints_a_catch_up_line_below_the_table(world: World) -> None:
    result = CliRunner().invoke(
        app, ["--config", str(world.config), "status"], env={**world.environ, "COLUMNS": "100"}
    )
    assert result.exit_code == 0, result.output
    assert f"{part_slug(1)}: catch-up: 1 sent of 3" in result.output.splitlines()


def test_a_campaign_without_catch_up_sends_shows_zeros_and_no_line(
    tmp_path: Path, database_url: str
) -> None:
    world = World(tmp_path / "clinic", database_url)
    try:
        world.join("early@example.com")
        world.at(datetime(2026, 12, 1, 9, 0, tzinfo=SYDNEY))
        world.send_slot()
    finally:
        world.close()
    base = ["--config", str(world.config), "status"]
    as_json = CliRunner().invoke(app, [*base, "--json"], env=world.environ)
    assert json.loads(as_json.output)[0]["catch_up"] == {"planned": 0, "sent": 0}
    text = CliRunner().invoke(app, base, env=world.environ)
    assert text.exit_code == 0, text.output
    assert "catch-up:" not in text.output
