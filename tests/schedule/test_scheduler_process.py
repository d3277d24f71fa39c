"""The scheduler and `newsletter schedule` as a user runs them.

Each scheduler is a real `python scheduler.py` subprocess with short lease and
poll intervals; its stderr goes to a file the test reads. `schedule list` runs
as a subprocess too; the other `schedule` commands run the same `main()` in
this process, which is quicker. Every wait is a bounded poll, and every
process is stopped (SIGTERM, or SIGKILL to play a crash).
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from pipeline.cli import main as cli_main
from pipeline.config import load_settings
from pipeline.newsletter import Newsletter
from pipeline.store.oneoffs import OneOffStore
from pipeline.subscribers import import_csv
from tests.helpers import ROOT, SAMPLE_SLUG, copy_sample_folder

SYDNEY = ZoneInfo("Australia/Sydney")
NEWSLETTER = [sys.executable, "-m", "pipeline.cli"]
SCHEDULER = [sys.executable, str(ROOT / "scheduler.py")]
PART_1 = "massage-and-mental-health"
SUBSCRIBERS = 5
#: A standby takes over within a lease; short here so the test takes seconds.
LEASE = "2"
POLL = "0.3"


def wait_for(condition: Callable[[], bool], timeout: float = 30.0) -> bool:
    """Poll ``condition`` until true or ``timeout`` seconds pass."""
    deadline = datetime.now(UTC) + timedelta(seconds=timeout)
    pause = threading.Event()
    while datetime.now(UTC) < deadline:
        if condition():
            return True
        pause.wait(0.1)
    return condition()


def environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NEWSLETTER_", "SENDGRID_"))}
    env.update({"NEWSLETTER_SECRET_KEY": "process-test-secret", "COLUMNS": "200"})
    return env


def newsletter(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*NEWSLETTER, *args],
        cwd=folder,
        env=environment(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@dataclass
class Scheduler:
    """One `scheduler.py` process and the file its stderr goes to."""

    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> int:
        """SIGTERM, then the exit status (bounded wait)."""
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=30)


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A clean sample folder with its five subscribers imported."""
    monkeypatch.setenv("NEWSLETTER_SECRET_KEY", "process-test-secret")
    for name in ("NEWSLETTER_DATABASE_URL", "NEWSLETTER_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    config = copy_sample_folder(tmp_path / "clinic")
    opened = Newsletter(load_settings(config))
    import_csv(opened.sessions, config.parent / "sample-subscribers.csv")
    opened.close()
    return config.parent


@pytest.fixture
def schedulers(folder: Path) -> Iterator[Callable[..., Scheduler]]:
    """Starts `scheduler.py` processes; kills any the test left running."""
    started: list[Scheduler] = []

    def start(*extra: str) -> Scheduler:
        log_path = folder / f"scheduler-{len(started)}.log"
        with log_path.open("wb") as stderr:
            process = subprocess.Popen(
                [
                    *SCHEDULER,
                    "--config",
                    str(folder / "newsletter.toml"),
                    "--lease-seconds",
                    LEASE,
                    "--poll-seconds",
                    POLL,
                    *extra,
                ],
                cwd=folder,
                env=environment(),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )
        started.append(Scheduler(process, log_path))
        return started[-1]

    yield start
    for scheduler in started:
        if scheduler.process.poll() is None:
            scheduler.process.kill()
            scheduler.process.wait(timeout=30)


def one_off(folder: Path, slug: str, seconds_ahead: float) -> None:
    """Set a one-off send directly in the store (the CLI refuses times in the past,
    and a CLI start-up could eat a two-second lead)."""
    opened = Newsletter(load_settings(folder / "newsletter.toml"))
    now = datetime.now(UTC)
    OneOffStore(opened.sessions).schedule(slug, now + timedelta(seconds=seconds_ahead), now)
    opened.close()


def emails(folder: Path, slug: str) -> list[Path]:
    return sorted((folder / "outbox" / slug).glob("*.eml"))


def test_scheduler_py_sends_a_one_off_two_seconds_ahead(
    folder: Path, schedulers: Callable[..., Scheduler]
) -> None:
    one_off(folder, SAMPLE_SLUG, 2)
    scheduler = schedulers("--log-json")
    assert wait_for(lambda: len(emails(folder, SAMPLE_SLUG)) == SUBSCRIBERS), scheduler.log()
    assert wait_for(lambda: "campaign hip-pain-massage-therapy: done" in scheduler.log())
    assert scheduler.stop() == 0
    entries = [json.loads(line) for line in scheduler.log().splitlines() if line.strip()]
    assert {"time", "level", "logger", "message"} <= set(entries[0])
    done = [e for e in entries if e["message"].startswith(f"campaign {SAMPLE_SLUG}: done")]
    assert len(done) == 1 and done[0]["sent"] == SUBSCRIBERS and done[0]["slug"] == SAMPLE_SLUG
    assert any(e["message"].startswith("firing: one-off send") for e in entries)
    assert len(emails(folder, SAMPLE_SLUG)) == SUBSCRIBERS  # and no more


def test_two_schedulers_one_fires_and_the_other_takes_over_when_it_dies(
    folder: Path, schedulers: Callable[..., Scheduler]
) -> None:
    first = schedulers()
    assert wait_for(lambda: "is the leader" in first.log()), first.log()
    second = schedulers()
    assert wait_for(lambda: "another scheduler holds the lock" in second.log()), second.log()

    one_off(folder, SAMPLE_SLUG, 0.5)
    assert wait_for(lambda: len(emails(folder, SAMPLE_SLUG)) == SUBSCRIBERS)
    assert wait_for(lambda: f"campaign {SAMPLE_SLUG}: done" in first.log())
    assert "campaign" not in second.log() and "is the leader" not in second.log()

    first.process.kill()  # a crash: the lease is not given up, it runs out
    first.process.wait(timeout=30)
    killed_at = datetime.now(UTC)
    assert wait_for(lambda: "is the leader" in second.log(), timeout=20), second.log()
    assert datetime.now(UTC) - killed_at < timedelta(seconds=15)

    one_off(folder, PART_1, 0.5)
    assert wait_for(lambda: len(emails(folder, PART_1)) == SUBSCRIBERS), second.log()
    assert second.stop() == 0
    assert len(emails(folder, SAMPLE_SLUG)) == SUBSCRIBERS  # nothing sent twice


def test_schedule_list_shows_the_next_five_tuesdays_at_nine_sydney(folder: Path) -> None:
    result = newsletter(folder, "schedule", "list")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    start = lines.index("Next firings:") + 1
    stamps = [line.split()[0] for line in lines[start : start + 5]]
    firings = [datetime.fromisoformat(stamp) for stamp in stamps]
    assert len(firings) == 5
    for firing, stamp in zip(firings, stamps, strict=True):
        local = firing.astimezone(SYDNEY)
        assert (local.strftime("%A %H:%M:%S"), local.utcoffset()) == (
            "Tuesday 09:00:00",
            firing.utcoffset(),
        )
        assert stamp.endswith(("+11:00", "+10:00"))
    days = [firing.astimezone(SYDNEY).date() for firing in firings]
    assert [(b - a).days for a, b in itertools.pairwise(days)] == [7, 7, 7, 7]
    now = datetime.now(UTC)
    assert now < firings[0] <= now + timedelta(days=7)


def cli(folder: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """`newsletter --config ... ARGS` in this process (quick); (status, stdout, stderr)."""
    status = cli_main(["--config", str(folder / "newsletter.toml"), *args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_schedule_commands_round_trip(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = cli(folder, capsys, "schedule", SAMPLE_SLUG, "--at", "2030-12-03 09:30")
    assert status == 0
    assert f"{SAMPLE_SLUG}: one-off send at 2030-12-03T09:30:00+11:00" in out
    assert "no scheduler is running" in out

    listing = json.loads(cli(folder, capsys, "schedule", "list", "--json")[1])
    assert listing["one_offs"] == [
        {"slug": SAMPLE_SLUG, "at": "2030-12-03T09:30:00+11:00", "status": "pending"}
    ]
    assert len(listing["next_firings"]) == 5 and listing["paused"] is False

    queue = json.loads(cli(folder, capsys, "queue", "--json")[1])
    planned = {entry["slug"]: entry["planned_at"] for entry in queue}
    assert planned[SAMPLE_SLUG] == "2030-12-03T09:30:00+11:00"

    assert cli(folder, capsys, "schedule", "pause")[0] == 0
    assert "PAUSED since" in cli(folder, capsys, "schedule", "list")[1]
    assert cli(folder, capsys, "schedule", "resume")[0] == 0

    status, out, _ = cli(folder, capsys, "schedule", "cancel", SAMPLE_SLUG)
    assert status == 0 and "cancelled" in out
    status, _, err = cli(folder, capsys, "schedule", "cancel", SAMPLE_SLUG)
    assert status == 1 and "no pending one-off" in err
    assert json.loads(cli(folder, capsys, "schedule", "list", "--json")[1])["one_offs"] == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("no-such-article", "--at", "2030-01-01 09:00"), "no article with slug"),
        ((SAMPLE_SLUG, "--at", "2020-01-01 09:00"), "is in the past"),
        ((SAMPLE_SLUG, "--at", "next tuesday"), "expected"),
        (("lst",), "not a command"),
    ],
)
def test_schedule_mistakes_are_one_clear_line(
    folder: Path, capsys: pytest.CaptureFixture[str], args: tuple[str, ...], message: str
) -> None:
    status, _, err = cli(folder, capsys, "schedule", *args)
    assert status == 1
    assert message in err and len(err.strip().splitlines()) == 1
