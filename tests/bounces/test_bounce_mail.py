"""Bounce mail read from a Maildir marks exactly the permanent failures (issue 16).

tests/data/bounces/new holds hand-written copies of what real mail servers
send back: a Postfix DSN (5.1.1), an Exim non-DSN failure, an Exchange Online
NDR (5.1.10), a Gmail DSN (5.1.1), a Postfix "delayed" warning (4.4.1) and an
out-of-office auto-reply. The `newsletter` command runs as a subprocess on
SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import ROOT, SAMPLE_SLUG, copy_sample_folder

FIXTURES = ROOT / "tests" / "data" / "bounces"


def _copy_maildir(target: Path) -> Path:
    """The fixture Maildir; git keeps no empty folders, so cur/ and tmp/ are made here."""
    shutil.copytree(FIXTURES, target)
    for folder in ("cur", "tmp"):
        (target / folder).mkdir(exist_ok=True)
    return target


PERMANENT = ["gone.exchange@contoso.example", "gone.exim@example.org", "gone.postfix@example.net"]
#: Subscribers too, but only delayed or away: never bounced.
NOT_GONE = ["slow.server@example.com", "away@example.com", "reader@example.com"]


def _cli(config: Path, *args: str, database_url: str) -> subprocess.CompletedProcess[str]:
    environ = {
        k: v for k, v in os.environ.items() if not k.startswith(("NEWSLETTER_", "SENDGRID_"))
    }
    environ.update(
        {
            "NEWSLETTER_SECRET_KEY": "bounce-tests",
            "NEWSLETTER_DATABASE_URL": database_url,
            "COLUMNS": "200",
        }
    )
    return subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "--config", str(config), *args],
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_maildir_of_real_formats_bounces_exactly_the_permanent_failures(
    tmp_path: Path, database_url: str
) -> None:
    config = copy_sample_folder(tmp_path / "clinic")
    maildir = tmp_path / "clinic" / "bounce-mail"
    _copy_maildir(maildir)
    with config.open("a", encoding="utf-8") as handle:
        handle.write('\n[bounces]\nmaildir = "bounce-mail"\n')
    csv = tmp_path / "audience.csv"
    csv.write_text("email\n" + "\n".join(PERMANENT + NOT_GONE) + "\n", encoding="utf-8")
    assert _cli(config, "check", database_url=database_url).returncode == 0
    assert (
        _cli(config, "subscribers", "import", str(csv), database_url=database_url).returncode == 0
    )
    planned = _cli(
        config, "send", SAMPLE_SLUG, "--yes", "--plan-only", "--skip-preflight",
        database_url=database_url,
    )  # fmt: skip
    assert planned.returncode == 0, planned.stderr

    result = _cli(config, "bounces", "--json", database_url=database_url)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "messages": 6,
        "not_bounces": 2,  # the 4.4.1 delay and the auto-reply
        "bounced": PERMANENT,
        "already_left": [],
        "unknown": ["gone.gmail@gmail.com"],  # a permanent failure, but not a subscriber
    }
    listed = json.loads(
        _cli(config, "subscribers", "list", "--json", database_url=database_url).stdout
    )
    status = {s["email"]: s["status"] for s in listed}
    assert status == {**dict.fromkeys(PERMANENT, "bounced"), **dict.fromkeys(NOT_GONE, "active")}
    # Their rows still pending in the planned campaign are suppressed, the others wait.
    counts = json.loads(
        _cli(config, "status", SAMPLE_SLUG, "--json", database_url=database_url).stdout
    )
    assert (counts["suppressed"], counts["pending"]) == (3, 3)

    # Every message is remembered (moved to cur/ with the Seen flag): nothing counts twice.
    assert not list((maildir / "new").iterdir())
    assert len(list((maildir / "cur").glob("*:2,S"))) == 6
    again = _cli(config, "bounces", "--json", database_url=database_url)
    assert json.loads(again.stdout)["messages"] == 0
    text = _cli(config, "bounces", database_url=database_url)
    assert text.returncode == 0 and "0 message(s) read" in text.stdout


def test_the_scheduler_job_reads_the_maildir(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipeline.bounces.job import read_bounce_mail

    config = copy_sample_folder(tmp_path / "clinic")
    _copy_maildir(tmp_path / "clinic" / "bounce-mail")
    with config.open("a", encoding="utf-8") as handle:
        handle.write('\n[bounces]\nmaildir = "bounce-mail"\n')
    csv = tmp_path / "audience.csv"
    csv.write_text("email\n" + "\n".join(PERMANENT) + "\n", encoding="utf-8")
    imported = _cli(config, "subscribers", "import", str(csv), database_url=database_url)
    assert imported.returncode == 0
    monkeypatch.setenv("NEWSLETTER_SECRET_KEY", "bounce-tests")
    monkeypatch.setenv("NEWSLETTER_DATABASE_URL", database_url)
    report = read_bounce_mail(str(config))
    assert report is not None and report.bounced == tuple(PERMANENT)
    again = read_bounce_mail(str(config))
    assert again is not None and again.messages == 0
