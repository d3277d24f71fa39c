"""``subscribers show``: one person's status, consent and place in each series.

The issue's "done when", played in the sample folder with an injected clock:
parts 1 and 2 of the sample series go out live, a subscriber is added, and
the profile tells the owner part 1 at the next send time, part 2 two days
later, then part 3 live with everyone else; each step checked against what
the passes and the live send then really do. SQLite and PostgreSQL.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import update
from typer.testing import CliRunner

from pipeline.cli import app, main
from pipeline.config import load_settings
from pipeline.newsletter import Newsletter
from pipeline.schedule.catch_up_track import run_pass
from pipeline.store.models import Subscriber
from pipeline.store.scheduler_state import SchedulerStateStore
from pipeline.subscribers import add_subscriber, remove_subscriber
from pipeline.subscribers.profile import SubscriberProfile, subscriber_profile
from tests.helpers import FixedClock, copy_sample_folder
from tests.schedule.catch_up_world import World

SYDNEY = ZoneInfo("Australia/Sydney")
SERIES = "massage-and-wellbeing"
PART_1 = "massage-and-mental-health"
PART_2 = "hip-pain-massage-therapy"
PART_3 = "massage-guns-are-they-worth-it"


def at(day: int, hour: int = 9, minute: int = 0) -> datetime:
    """``day`` December 2026, Sydney time (Tuesdays: 1, 8, 15)."""
    return datetime(2026, 12, day, hour, minute, tzinfo=SYDNEY)


class Clinic:
    """The sample folder on one database, its clock moved by hand."""

    def __init__(self, folder: Path, database_url: str) -> None:
        self.config = copy_sample_folder(folder)
        self.environ = {"NEWSLETTER_DATABASE_URL": database_url, "NEWSLETTER_SECRET_KEY": "k" * 32}
        self.clock = FixedClock(datetime(2026, 11, 30, 12, 0, tzinfo=SYDNEY))
        self.newsletter = Newsletter(load_settings(self.config, self.environ), clock=self.clock)

    def slot(self, moment: datetime) -> None:
        """The send time as the scheduler plays it: the live part (Tuesdays), then the pass."""
        self.clock.now = moment
        if moment.weekday() == 1:
            due = self.newsletter.next_due()
            assert due is not None
            assert self.newsletter.send(due.slug).complete
        run_pass(self.newsletter)

    def profile(self, email: str) -> SubscriberProfile:
        found = subscriber_profile(self.newsletter, email)
        assert found is not None
        return found


@pytest.fixture
def clinic(tmp_path: Path, database_url: str) -> Iterator[Clinic]:
    opened = Clinic(tmp_path / "clinic", database_url)
    try:
        yield opened
    finally:
        opened.newsletter.close()


def _series(profile: SubscriberProfile) -> dict[str, object]:
    shown = profile.as_dict()["series"]
    assert isinstance(shown, list) and [s["series"] for s in shown] == [SERIES]
    found: dict[str, object] = shown[0]
    return found


def _received(profile: SubscriberProfile) -> list[tuple[object, ...]]:
    rows = _series(profile)["received"]
    assert isinstance(rows, list)
    return [(r["part"], r["slug"], r["via"], r["state"], r["sent_at"]) for r in rows]


def test_a_late_subscriber_is_told_each_part_and_its_date_as_it_really_happens(
    clinic: Clinic,
) -> None:
    add_subscriber(clinic.newsletter.sessions, "early@example.com")
    clinic.slot(at(1))  # part 1 live
    # Before any catch-up: the early reader's next is part 2, live, on the queue's date.
    assert _series(clinic.profile("early@example.com"))["next"] == {
        "part": 2,
        "slug": PART_2,
        "title": "Hip Pain & How Massage Therapy Helps",
        "via": "live",
        "at": "2026-12-08T09:00:00+11:00",
    }
    clinic.slot(at(8))  # part 2 live
    clinic.clock.now = at(8, 12)  # after today's send time
    add_subscriber(clinic.newsletter.sessions, " Late@Example.com ")

    late = clinic.profile("LATE@example.com")
    assert late.email == "late@example.com" and late.status == "active"
    assert _received(late) == []
    upcoming = _series(late)["next"]
    assert isinstance(upcoming, dict)
    assert (upcoming["part"], upcoming["slug"], upcoming["via"], upcoming["at"]) == (
        1,
        PART_1,
        "catch-up",
        "2026-12-09T09:00:00+11:00",  # the next send time: Wednesday
    )

    clinic.slot(at(9))  # the pass gives part 1, as announced
    late = clinic.profile("late@example.com")
    assert _received(late) == [
        (1, PART_1, "catch-up", "sent", "2026-12-09T09:00:00+11:00"),
    ]
    upcoming = _series(late)["next"]
    assert isinstance(upcoming, dict)
    assert (upcoming["part"], upcoming["via"], upcoming["at"]) == (
        2,
        "catch-up",
        "2026-12-11T09:00:00+11:00",  # two days later
    )

    clinic.slot(at(10))  # Thursday: too soon, nothing for them
    assert len(_received(clinic.profile("late@example.com"))) == 1
    clinic.slot(at(11))  # Friday: part 2, as announced
    late = clinic.profile("late@example.com")
    assert [row[:3] for row in _received(late)] == [
        (1, PART_1, "catch-up"),
        (2, PART_2, "catch-up"),
    ]
    # Caught up: part 3 live, with everyone else, on the queue's date.
    upcoming = _series(late)["next"]
    assert isinstance(upcoming, dict)
    assert (upcoming["part"], upcoming["via"], upcoming["at"]) == (
        3,
        "live",
        "2026-12-15T09:00:00+11:00",
    )
    assert upcoming == _series(clinic.profile("early@example.com"))["next"]

    clinic.slot(at(15))  # part 3 live reaches them
    late = clinic.profile("late@example.com")
    assert [row[:3] for row in _received(late)] == [
        (1, PART_1, "catch-up"),
        (2, PART_2, "catch-up"),
        (3, PART_3, "live"),
    ]
    assert _series(late)["next"] is None  # the series has no part 4 yet
    early = clinic.profile("early@example.com")
    assert [row[:3] for row in _received(early)] == [
        (1, PART_1, "live"),
        (2, PART_2, "live"),
        (3, PART_3, "live"),
    ]


def test_someone_who_joins_before_the_send_time_gets_part_1_that_day(clinic: Clinic) -> None:
    clinic.slot(at(1))  # part 1 live (to nobody yet)
    clinic.clock.now = at(3, 8, 59)  # Thursday, a minute before the send time
    add_subscriber(clinic.newsletter.sessions, "morning@example.com")
    upcoming = _series(clinic.profile("morning@example.com"))["next"]
    assert isinstance(upcoming, dict)
    assert (upcoming["part"], upcoming["via"], upcoming["at"]) == (
        1,
        "catch-up",
        "2026-12-03T09:00:00+11:00",
    )
    # Paused: the same part, but no date until the schedule is resumed.
    SchedulerStateStore(clinic.newsletter.sessions).set_paused(True, clinic.clock.now)
    upcoming = _series(clinic.profile("morning@example.com"))["next"]
    assert isinstance(upcoming, dict)
    assert (upcoming["part"], upcoming["via"], upcoming["at"]) == (1, "catch-up", None)


def test_unsubscribed_people_have_no_next_part_and_their_consent_record_shows(
    clinic: Clinic,
) -> None:
    add_subscriber(clinic.newsletter.sessions, "gone@example.com")
    clinic.slot(at(1))
    with clinic.newsletter.sessions.begin() as session:
        session.execute(
            update(Subscriber)
            .where(Subscriber.email == "gone@example.com")
            .values(consent_at=at(1, 7), consent_source="web form", consent_ip="203.0.113.9")
        )
    clinic.clock.now = at(2)
    remove_subscriber(clinic.newsletter.sessions, "gone@example.com")
    gone = clinic.profile("gone@example.com").as_dict()
    assert gone["status"] == "unsubscribed"
    consent = gone["consent"]
    assert isinstance(consent, dict)
    assert consent["source"] == "cli"
    assert consent["consent_at"] == "2026-12-01T07:00:00+11:00"
    assert consent["consent_source"] == "web form"
    assert consent["consent_ip"] == "203.0.113.9"
    assert consent["unsubscribed_at"] is not None
    series = gone["series"]
    assert isinstance(series, list)
    assert series[0]["next"] is None
    assert [r["slug"] for r in series[0]["received"]] == [PART_1]


def test_unknown_or_malformed_addresses_have_no_profile(clinic: Clinic) -> None:
    assert subscriber_profile(clinic.newsletter, "nobody@example.com") is None
    assert subscriber_profile(clinic.newsletter, "not an address") is None


def test_the_command_prints_the_profile_and_exits_1_for_an_unknown_address(
    clinic: Clinic, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    add_subscriber(clinic.newsletter.sessions, "early@example.com")
    clinic.slot(at(1))
    clinic.slot(at(8))
    clinic.clock.now = at(8, 12)
    add_subscriber(clinic.newsletter.sessions, "late@example.com")
    # (pipeline.cli re-exports the typer ``app``, which hides the module of that name.)
    cli_app = importlib.import_module("pipeline.cli.app")
    opened = cli_app.Newsletter
    monkeypatch.setattr(
        cli_app, "Newsletter", lambda settings: opened(settings, clock=clinic.clock)
    )
    runner = CliRunner()
    base = ["--config", str(clinic.config), "subscribers", "show"]

    shown = runner.invoke(app, [*base, "late@example.com"], env=clinic.environ)
    assert shown.exit_code == 0, shown.output
    lines = shown.output.splitlines()
    assert lines[0] == "late@example.com: active"
    assert f"{SERIES} (catch-up on):" in lines
    assert "  nothing received yet" in lines
    assert f"  next: part 1 {PART_1}, on their catch-up track, 2026-12-09T09:00:00+11:00" in lines

    early = runner.invoke(app, [*base, "early@example.com"], env=clinic.environ)
    assert early.exit_code == 0, early.output
    assert f"  part 1 {PART_1} (live): sent 2026-12-01T09:00:00+11:00" in early.output
    assert f"  next: part 3 {PART_3}, live, 2026-12-15T09:00:00+11:00" in early.output

    as_json = runner.invoke(app, [*base, "late@example.com", "--json"], env=clinic.environ)
    assert as_json.exit_code == 0, as_json.output
    assert json.loads(as_json.output) == clinic.profile("late@example.com").as_dict()

    # Through main(), as the console script runs it: one line on stderr, exit 1.
    for name, value in clinic.environ.items():
        monkeypatch.setenv(name, value)
    capsys.readouterr()
    assert main([*base, "nobody@example.com"]) == 1
    captured = capsys.readouterr()
    assert captured.err == "error: nobody@example.com: no subscriber with this address\n"


def test_the_next_part_follows_the_catch_up_limit_as_the_pass_does(
    tmp_path: Path, database_url: str
) -> None:
    world = World(tmp_path / "clinic", database_url, "[series.stretching]\ncatch_up_limit = 2")
    try:
        world.join("early@example.com")
        for day in (1, 8, 15, 22):  # parts 1-4 live
            world.at(at(day))
            world.send_slot()
        world.at(at(22, 12))
        world.join("late@example.com")
        profile = subscriber_profile(world.newsletter, "late@example.com")
        assert profile is not None
        [series] = profile.series
        assert series.series == "stretching" and series.received == ()
        assert series.next is not None
        # Only the two most recent parts fit the limit: part 3 first, tomorrow.
        assert (series.next.part, series.next.via, series.next.at) == (3, "catch-up", at(23))
        world.at(at(23))
        report = world.send_slot()
        assert [(p.part, p.emails) for p in report.parts] == [(3, ("late@example.com",))]
    finally:
        world.close()
