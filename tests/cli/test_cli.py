"""The `newsletter` command as a user runs it: a real subprocess per call."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import ROOT, SAMPLE_SLUG, copy_sample_folder

NEWSLETTER = [sys.executable, "-m", "pipeline.cli"]


def run(
    folder: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environ = {
        k: v for k, v in os.environ.items() if not k.startswith(("NEWSLETTER_", "SENDGRID_"))
    }
    environ.update({"NEWSLETTER_SECRET_KEY": "cli-test-secret", "COLUMNS": "200"})
    environ.update(env or {})
    return subprocess.run(
        [*NEWSLETTER, *args],
        cwd=folder,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    copy_sample_folder(tmp_path / "clinic")
    return tmp_path / "clinic"


def test_demo_sends_the_sample_issue_once(folder: Path) -> None:
    first = run(folder, "demo", "--no-serve")
    assert first.returncode == 0, first.stderr
    emails = sorted((folder / "outbox" / SAMPLE_SLUG).glob("*.eml"))
    assert len(emails) == 5
    assert str(folder / "outbox" / SAMPLE_SLUG) in first.stdout.replace("\n", "")
    second = run(folder, "demo", "--no-serve")
    assert second.returncode == 0, second.stderr
    assert "nothing sent twice" in second.stdout
    assert sorted((folder / "outbox" / SAMPLE_SLUG).glob("*.eml")) == emails
    status = json.loads(run(folder, "status", SAMPLE_SLUG, "--json").stdout)
    assert status == {
        "slug": SAMPLE_SLUG,
        "planned": 5,
        "pending": 0,
        "sending": 0,
        "sent": 5,
        "failed": 0,
        "uncertain": 0,
        "suppressed": 0,
        "failures": [],
        "in_flight": [],
        "stopped": None,
        "delivered": 0,
        "bounced": 0,
        "opened": 0,
        "clicked": 0,
        "catch_up": {"planned": 0, "sent": 0},
    }


def test_check_names_every_problem_in_three_broken_articles(folder: Path) -> None:
    articles = folder / "articles"
    (articles / "no-title.md").write_text("---\nsummary: hi\n---\nBody\n", encoding="utf-8")
    (articles / "bad-status.md").write_text(
        "---\ntitle: A\nstatus: published\n---\nBody\n", encoding="utf-8"
    )
    (articles / "broken-yaml.md").write_text(
        "---\ntitle: A\nseries: [unclosed\n---\nBody\n", encoding="utf-8"
    )
    result = run(folder, "check")
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if ".md:" in line]
    assert len(lines) == 3, result.stderr
    assert any(line.startswith(str(articles / "no-title.md") + ":") for line in lines)
    assert any("bad-status.md:3:" in line and "status" in line for line in lines)
    assert any("broken-yaml.md:" in line for line in lines)
    assert "Traceback" not in result.stderr


def test_check_is_clean_on_the_sample_and_on_init(folder: Path, tmp_path: Path) -> None:
    assert run(folder, "check").returncode == 0
    created = run(tmp_path, "init", "new-clinic")
    assert created.returncode == 0, created.stderr
    assert run(tmp_path / "new-clinic", "check").returncode == 0
    again = run(tmp_path, "init", "new-clinic")
    assert again.returncode == 1 and "already exists" in again.stderr


def test_queue_json_lists_send_order_with_planned_dates(folder: Path) -> None:
    result = run(folder, "queue", "--json")
    assert result.returncode == 0, result.stderr
    queue = json.loads(result.stdout)
    assert [entry["part"] for entry in queue] == [1, 2, 3]
    assert set(queue[0]) == {"slug", "title", "series", "part", "status", "planned_at"}
    assert all(entry["planned_at"].endswith(("+11:00", "+10:00")) for entry in queue)


def test_preview_writes_three_files(folder: Path, tmp_path: Path) -> None:
    result = run(folder, "preview", SAMPLE_SLUG, "--out", str(tmp_path / "p"))
    assert result.returncode == 0, result.stderr
    for suffix in ("html", "txt", "eml"):
        assert (tmp_path / "p" / f"{SAMPLE_SLUG}.{suffix}").stat().st_size > 1000


def test_subscriber_commands(folder: Path) -> None:
    csv = folder / "people.csv"
    csv.write_text(
        "email,first_name\nok@example.com,Ok\nnot-an-address,Bad\nleft@example.com,Left\n",
        encoding="utf-8",
    )
    imported = run(folder, "subscribers", "import", str(csv))
    assert imported.returncode == 1  # a row was skipped, and said so
    assert f"{csv}:3:" in imported.stderr
    assert run(folder, "subscribers", "remove", "left@example.com").returncode == 0
    assert run(folder, "subscribers", "import", str(csv)).returncode == 1
    listed = json.loads(run(folder, "subscribers", "list", "--json").stdout)
    by_email = {entry["email"]: entry for entry in listed}
    assert by_email["left@example.com"]["status"] == "unsubscribed"
    assert by_email["ok@example.com"]["status"] == "active"
    assert run(folder, "subscribers", "forget", "ok@example.com").returncode == 0
    exported = run(folder, "subscribers", "export").stdout
    assert "ok@example.com" not in exported and "left@example.com" in exported


def test_errors_are_one_line_without_traceback(folder: Path, tmp_path: Path) -> None:
    missing = run(tmp_path, "queue")
    assert missing.returncode == 1
    assert missing.stderr.startswith("error: newsletter.toml: settings file not found")
    assert "Traceback" not in missing.stderr
    no_yes = run(folder, "send")
    assert no_yes.returncode == 1 and "--yes" in no_yes.stderr
    unknown = run(folder, "send", "nope", "--yes")
    assert unknown.returncode == 1 and "nope" in unknown.stderr


def test_send_exit_status_and_test_send(folder: Path) -> None:
    assert run(folder, "subscribers", "import", "sample-subscribers.csv").returncode == 0
    dry = run(folder, "send", "--dry-run")
    assert dry.returncode == 0 and "would go to 5" in dry.stdout
    sent = run(folder, "send", "--yes")
    assert sent.returncode == 0, sent.stderr
    assert len(list((folder / "outbox" / "massage-and-mental-health").glob("*.eml"))) == 5
    test = run(folder, "test-send", SAMPLE_SLUG, "--to", "owner@example.com")
    assert test.returncode == 0, test.stderr
    assert list((folder / "outbox" / f"test-{SAMPLE_SLUG}").glob("*owner@example.com.eml"))


def test_help_lists_what_the_readme_documents() -> None:
    result = run(ROOT, "--help")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for command in ("init", "check", "queue", "status", "preview", "send", "test-send"):
        assert command in result.stdout
        assert f"`newsletter {command}" in readme or f"| `{command}" in readme


def test_usage_errors_and_version_without_traceback(folder: Path) -> None:
    bad = run(folder, "send", "--bogus")
    assert bad.returncode == 2 and "No such option" in bad.stderr
    assert "Traceback" not in bad.stderr
    assert run(folder, "--version").stdout.strip() == "0.1.0"
