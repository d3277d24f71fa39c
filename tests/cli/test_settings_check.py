"""A broken setting is found by `check` and stops every service at once (issue 16).

Before, `cron = "61 9 * * *"` passed `check` ("no problems") and the scheduler
logged "database trouble (schedule.cron: ...); retrying" forever.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import ROOT, copy_sample_folder

NEWSLETTER = [sys.executable, "-m", "pipeline.cli"]
SCHEDULER = [sys.executable, str(ROOT / "scheduler.py")]


def _env() -> dict[str, str]:
    environ = {
        k: v for k, v in os.environ.items() if not k.startswith(("NEWSLETTER_", "SENDGRID_"))
    }
    environ.update({"NEWSLETTER_SECRET_KEY": "settings-check-secret", "COLUMNS": "80"})
    return environ


def _run(folder: Path, *command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(command),
        cwd=folder,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _set(config: Path, old: str, new: str) -> int:
    """Replace one line; return its line number."""
    lines = config.read_text(encoding="utf-8").splitlines()
    number = next(i for i, line in enumerate(lines) if line.startswith(old))
    lines[number] = new
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return number + 1


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    copy_sample_folder(tmp_path / "clinic")
    return tmp_path / "clinic"


@pytest.mark.parametrize(
    ("cron", "says"),
    [
        ("0 9 * * tuesday-ish", "bad day of week"),
        ("61 9 * * *", "higher than the maximum value (59)"),
    ],
)
def test_check_refuses_a_bad_cron_with_its_line(folder: Path, cron: str, says: str) -> None:
    line = _set(folder / "newsletter.toml", "cron =", f'cron = "{cron}"')
    result = _run(folder, *NEWSLETTER, "check")
    assert result.returncode == 1, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1  # one line, however narrow the terminal
    assert lines[0].startswith(f"newsletter.toml:{line}: schedule.cron: ")
    assert says in lines[0]
    assert "no problems" not in result.stdout


def test_services_exit_at_once_with_the_same_line(folder: Path) -> None:
    line = _set(folder / "newsletter.toml", "cron =", 'cron = "61 9 * * *"')
    started = time.monotonic()
    scheduler = _run(folder, *SCHEDULER, "--config", "newsletter.toml", "--lease-seconds", "1")
    assert scheduler.returncode == 1
    assert time.monotonic() - started < 30  # before: never exited
    assert f"newsletter.toml:{line}: schedule.cron: " in scheduler.stderr
    assert "retrying" not in scheduler.stderr
    for command in (["worker", "--once"], ["serve", "--port", "1"]):
        result = _run(folder, *NEWSLETTER, *command)
        assert result.returncode == 1, command
        assert result.stderr.startswith(f"error: newsletter.toml:{line}: schedule.cron: ")


def test_check_and_worker_refuse_an_unknown_transport(folder: Path) -> None:
    line = _set(folder / "newsletter.toml", "transport =", 'transport = "smtpp"')
    for command in (["check"], ["worker", "--once"]):
        result = _run(folder, *NEWSLETTER, *command)
        assert result.returncode == 1
        assert f"newsletter.toml:{line}: sending.transport: unknown transport 'smtpp'" in (
            result.stderr
        )


def test_check_refuses_bounces_settings(folder: Path) -> None:
    config = folder / "newsletter.toml"
    with config.open("a", encoding="utf-8") as handle:
        handle.write('\n[bounces]\nimap_host = "imap.example.com"\nimap_username = "b"\n')
    result = _run(folder, *NEWSLETTER, "check")
    assert result.returncode == 1
    assert "bounces.imap_host is set but NEWSLETTER_IMAP_PASSWORD is not set" in result.stderr
    config.write_text(
        config.read_text(encoding="utf-8").replace('imap_host = "imap.example.com"\n', ""),
        encoding="utf-8",
    )
    result = _run(folder, *NEWSLETTER, "check")
    assert result.returncode == 1
    assert "bounces: imap_username needs imap_host" in result.stderr
