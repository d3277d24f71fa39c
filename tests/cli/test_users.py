"""``newsletter users`` as a user runs it (a real subprocess), and the setup link `demo` prints."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from pipeline.accounts import verify_password
from pipeline.config import load_settings
from pipeline.newsletter import Newsletter
from pipeline.store.users import find_user
from tests.cli.test_cli import NEWSLETTER, run
from tests.helpers import copy_sample_folder

PASSWORD = "a long enough passphrase"


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    copy_sample_folder(tmp_path / "clinic")
    return tmp_path / "clinic"


def add(folder: Path, email: str, role: str, password: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*NEWSLETTER, "users", "add", email, "--role", role, "--password-stdin"],
        cwd=folder,
        env={**_env(), "NEWSLETTER_SECRET_KEY": "cli-test-secret"},
        input=password + "\n",
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("NEWSLETTER_", "SENDGRID_"))}


def test_users_add_list_remove(folder: Path) -> None:
    added = add(folder, "Owner@Clinic.example", "owner", PASSWORD)
    assert added.returncode == 0, added.stderr
    assert "owner@clinic.example" in added.stdout
    settings = load_settings(folder / "newsletter.toml", environ={"NEWSLETTER_SECRET_KEY": "x"})
    newsletter = Newsletter(settings)
    user = find_user(newsletter.sessions, "owner@clinic.example")
    assert user is not None and user.role == "owner"
    assert user.password_hash.startswith("$argon2id$") and PASSWORD not in user.password_hash
    assert verify_password(user.password_hash, PASSWORD)
    assert not verify_password(user.password_hash, PASSWORD + "x")

    again = add(folder, "owner@clinic.example", "writer", PASSWORD)
    assert again.returncode == 1 and "exists already" in again.stderr
    short = add(folder, "w@clinic.example", "writer", "short")
    assert short.returncode == 1 and "at least" in short.stderr
    bad_role = add(folder, "w@clinic.example", "admin", PASSWORD)
    assert bad_role.returncode == 1 and "role" in bad_role.stderr
    assert add(folder, "w@clinic.example", "writer", PASSWORD).returncode == 0

    listed = json.loads(run(folder, "users", "list", "--json").stdout)
    assert [(u["email"], u["role"]) for u in listed] == [
        ("owner@clinic.example", "owner"),
        ("w@clinic.example", "writer"),
    ]
    assert "argon2" not in run(folder, "users", "list").stdout
    assert run(folder, "users", "remove", "w@clinic.example").returncode == 0
    missing = run(folder, "users", "remove", "w@clinic.example")
    assert missing.returncode == 1 and "no account" in missing.stderr
    newsletter.close()


def test_demo_prints_a_setup_link_only_while_no_account_exists(folder: Path) -> None:
    first = run(folder, "demo", "--no-serve")
    assert first.returncode == 0, first.stderr
    match = re.search(r"http://127\.0\.0\.1:8000/admin/setup/\S+", first.stdout)
    assert match is not None, first.stdout
    assert add(folder, "owner@clinic.example", "owner", PASSWORD).returncode == 0
    second = run(folder, "demo", "--no-serve")
    assert second.returncode == 0 and "/admin/setup/" not in second.stdout


def test_a_loopback_base_url_follows_the_served_port_and_a_public_one_stays() -> None:
    from pipeline.cli.services import served_base_url

    sample = "http://127.0.0.1:8000"
    assert served_base_url(sample, "127.0.0.1", 8000) == sample
    assert served_base_url(sample, "127.0.0.1", 8765) == "http://127.0.0.1:8765"
    assert served_base_url("http://localhost:8000/", "0.0.0.0", 9000) == "http://localhost:9000"
    assert served_base_url(sample, "::1", 8001) == "http://[::1]:8001"
    public = "https://news.example.com"
    assert served_base_url(public, "127.0.0.1", 8765) == public


def test_demo_hands_its_served_base_url_to_the_scheduler_jobs(folder: Path) -> None:
    """`demo --port 8765`: the jobs read the file again, and still link to port 8765."""
    from pipeline.cli.services import jobs_link_here
    from pipeline.schedule.jobs import _open

    config = folder / "newsletter.toml"
    assert load_settings(config, environ={}).web.base_url == "http://127.0.0.1:8000"
    before = os.environ.get("NEWSLETTER_BASE_URL")
    with jobs_link_here("http://127.0.0.1:8765"):
        job_newsletter = _open(str(config), None)  # how every scheduler job opens the folder
        assert job_newsletter.settings.web.base_url == "http://127.0.0.1:8765"
        job_newsletter.close()
    assert os.environ.get("NEWSLETTER_BASE_URL") == before


def test_the_base_url_override_and_its_error_name_the_variable(folder: Path) -> None:
    from pipeline.errors import ConfigError

    config = folder / "newsletter.toml"
    moved = load_settings(config, environ={"NEWSLETTER_BASE_URL": "https://news.example.com"})
    assert moved.web.base_url == "https://news.example.com"
    with pytest.raises(ConfigError) as caught:
        load_settings(config, environ={"NEWSLETTER_BASE_URL": "news.example.com"})
    assert str(caught.value).startswith("NEWSLETTER_BASE_URL: web.base_url:")
