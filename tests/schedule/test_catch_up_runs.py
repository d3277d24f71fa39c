"""The catch-up pass as people run it: ``newsletter catch-up``, the scheduler's job, a kill -9.

Real processes and the loopback SendGrid server for the crash; the CLI
through typer's runner for the rest. SQLite and PostgreSQL.
"""

from __future__ import annotations

import collections
import importlib
import json
import os
import signal
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner, Result

from pipeline.cli import app
from pipeline.config import load_settings
from pipeline.newsletter import Newsletter
from pipeline.schedule.catch_up_job import catch_up_due, catch_up_trigger
from pipeline.schedule.triggers import recurring_trigger
from pipeline.store.models import Delivery, DeliveryStatus
from pipeline.subscribers import import_csv
from tests.fakes.sendgrid_server import (
    TEST_API_KEY,
    Hang,
    SendGridServer,
    sendgrid_server_fixture,  # noqa: F401 - registers the fixture
)
from tests.helpers import copy_sample_folder
from tests.schedule.catch_up_world import SYDNEY, World, part_slug, write_series


def _cli(world: World, *args: str) -> Result:
    return CliRunner().invoke(app, ["--config", str(world.config), *args], env=world.environ)


def test_catch_up_by_hand_dry_run_lists_then_yes_sends_then_a_repeat_sends_nothing(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = World(tmp_path / "clinic", database_url)
    try:
        world.join("early@example.com")
        world.at(datetime(2026, 12, 1, 9, 0, tzinfo=SYDNEY))
        world.send_slot()  # part 1 live
        world.at(datetime(2026, 12, 8, 9, 0, tzinfo=SYDNEY))
        world.send_slot()  # part 2 live
        world.join("late@example.com")
    finally:
        world.close()
    # The command's clock: Wednesday 9 Dec, 08:00 Sydney (the pass is "today's").
    moment = datetime(2026, 12, 9, 8, 0, tzinfo=SYDNEY)
    # (pipeline.cli re-exports the typer ``app``, which hides the module of that name.)
    cli_app = importlib.import_module("pipeline.cli.app")
    opened = cli_app.Newsletter
    monkeypatch.setattr(
        cli_app, "Newsletter", lambda settings: opened(settings, clock=lambda: moment)
    )
    dry = _cli(world, "catch-up", "--dry-run", "--json")
    assert dry.exit_code == 0, dry.output
    listed = json.loads(dry.output)
    assert listed["slot"] == "2026-12-09T09:00:00+11:00"
    assert listed["parts"] == [
        {"series": "stretching", "slug": part_slug(1), "part": 1, "emails": ["late@example.com"]}
    ]
    assert _catch_up_rows(world) == 0  # a dry run stores nothing
    assert _cli(world, "catch-up").exit_code == 1  # neither --yes nor --dry-run
    sent = _cli(world, "catch-up", "--yes")
    assert sent.exit_code == 0, sent.output
    assert "late@example.com gets stretching part 1" in sent.output
    again = _cli(world, "catch-up", "--yes")
    assert again.exit_code == 0, again.output
    assert "nobody is due a part today" in again.output
    assert _catch_up_rows(world) == 1


def _catch_up_rows(world: World) -> int:
    newsletter = Newsletter(load_settings(world.config, world.environ))
    try:
        with newsletter.sessions() as session:
            return int(
                session.scalar(select(func.count()).where(Delivery.catch_up_at.is_not(None))) or 0
            )
    finally:
        newsletter.close()


def test_the_scheduler_runs_the_pass_daily_at_the_send_time(
    database_url: str, tmp_path: Path
) -> None:
    world = World(tmp_path / "clinic", database_url)
    try:
        trigger = catch_up_trigger(world.newsletter.settings.schedule)
        after = datetime(2026, 12, 9, 9, 30, tzinfo=SYDNEY)
        fire = trigger.get_next_fire_time(None, after)
        # Every day, not Tuesdays; 30 s after the live firing of the same minute,
        # so the scheduler's one worker plans a live issue before the pass looks.
        assert fire == datetime(2026, 12, 10, 9, 0, 30, tzinfo=SYDNEY)
        live = recurring_trigger(world.newsletter.settings.schedule)
        tuesday = live.get_next_fire_time(None, datetime(2026, 12, 7, tzinfo=SYDNEY))
        assert tuesday == datetime(2026, 12, 8, 9, 0, tzinfo=SYDNEY)
        assert trigger.get_next_fire_time(None, tuesday) == tuesday + timedelta(seconds=30)
        world.join("early@example.com")
        world.at(datetime(2026, 12, 1, 9, 0, tzinfo=SYDNEY))
        world.send_slot()
        world.join("late@example.com")
        config = str(world.config)
        os.environ.update(world.environ)
        try:
            report = catch_up_due(config, now=datetime(2026, 12, 2, 9, 0, tzinfo=SYDNEY))
            assert report is not None and report.people == 1
            again = catch_up_due(config, now=datetime(2026, 12, 2, 9, 5, tzinfo=SYDNEY))
            assert again is not None and again.people == 0
        finally:
            for key in world.environ:
                os.environ.pop(key, None)
        late = [r for r in world.received() if r.email == "late@example.com"]
        assert [(r.part, r.status, r.catch_up) for r in late] == [(1, DeliveryStatus.SENT, True)]
    finally:
        world.close()


def test_check_names_the_line_of_a_bad_series_setting(tmp_path: Path) -> None:
    config = copy_sample_folder(tmp_path / "clinic")
    text = config.read_text(encoding="utf-8")
    config.write_text(
        text + '\n[series.stretching]\ncatch_up = true\ncatch_up_every = "12h"\n',
        encoding="utf-8",
    )
    line = len(text.splitlines()) + 4
    result = CliRunner().invoke(
        app, ["--config", str(config), "check"], env={"NEWSLETTER_SECRET_KEY": "k" * 32}
    )
    assert result.exit_code == 1
    assert f"{config}:{line}: series.stretching.catch_up_every: " in result.output
    assert "at least 1d" in result.output


# -- a kill -9 in the middle of a catch-up batch ------------------------------------


def _sendgrid_folder(tmp_path: Path, server: SendGridServer, database_url: str) -> Path:
    config = copy_sample_folder(tmp_path / "clinic")
    text = config.read_text(encoding="utf-8")
    text = text.replace('transport = "outbox"', 'transport = "sendgrid"\nconcurrency = 1')
    config.write_text(text + "\n[sendgrid]\ntimeout = 20\nmax_retries = 2\n", encoding="utf-8")
    write_series(config.parent / "articles", parts=2)
    return config


def _environ(server: SendGridServer, database_url: str) -> dict[str, str]:
    return {
        "SENDGRID_API_KEY": TEST_API_KEY,
        "SENDGRID_API_HOST": server.url,
        "NEWSLETTER_SECRET_KEY": "catch-up-faults",
        "NEWSLETTER_DATABASE_URL": database_url,
    }


def _run(config: Path, environ: dict[str, str], *args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NEWSLETTER_", "SENDGRID_"))}
    env.update(environ)
    return subprocess.Popen(
        [sys.executable, "-m", "pipeline.cli", "--config", str(config), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_kill_9_mid_catch_up_batch_then_a_rerun_no_duplicates_and_the_batch_uncertain(
    sendgrid_server: SendGridServer, database_url: str, tmp_path: Path
) -> None:
    config = _sendgrid_folder(tmp_path, sendgrid_server, database_url)
    environ = _environ(sendgrid_server, database_url)
    newsletter = Newsletter(load_settings(config, environ))
    try:
        # Part 1 goes out live (now, real clock) to one early reader...
        audience = tmp_path / "early.csv"
        audience.write_text("email\nearly@example.com\n", encoding="utf-8")
        assert not import_csv(newsletter.sessions, audience).problems
        assert newsletter.send(part_slug(1)).complete
        # ...then 2500 people join: all of them are due part 1 on their track.
        late = [f"late{i:05d}@example.com" for i in range(2500)]
        audience.write_text("email\n" + "\n".join(late) + "\n", encoding="utf-8")
        assert not import_csv(newsletter.sessions, audience).problems
    finally:
        newsletter.close()
    sendgrid_server.script(None, Hang(accept=True))  # batch 2 hangs after it arrived
    first = _run(config, environ, "catch-up", "--yes")
    sendgrid_server.wait_for_requests(3, timeout=60)  # part 1 live, catch-up batches 1 and 2
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)
    sendgrid_server.release()

    second = _run(config, environ, "catch-up", "--yes")
    out, err = second.communicate(timeout=120)
    assert second.returncode == 1, (out, err)  # the batch in doubt is said to be so
    assert "1000 uncertain" in err
    newsletter = Newsletter(load_settings(config, environ))
    try:
        with newsletter.sessions() as session:
            states = dict(
                session.execute(
                    select(Delivery.status, func.count())
                    .where(Delivery.catch_up_at.is_not(None))
                    .group_by(Delivery.status)
                ).all()
            )
    finally:
        newsletter.close()
    assert states == {DeliveryStatus.SENT: 1500, DeliveryStatus.UNCERTAIN: 1000}
    delivered = collections.Counter(sendgrid_server.delivered_addresses())
    # The hung request reached the server: everyone has part 1, nobody twice.
    assert set(delivered) == {"early@example.com", *late}
    assert max(delivered.values()) == 1
