"""Helpers the delivery-fault tests share: a sample folder on SendGrid, sending in this
process without real waits, the two end checks, and the CLI as a real process."""

from __future__ import annotations

import collections
import os
import subprocess
import sys
from pathlib import Path

from pipeline.config import load_settings
from pipeline.newsletter import Newsletter, SendReport
from pipeline.store.ledger import CampaignCounts
from pipeline.subscribers import import_csv
from tests.fakes.sendgrid_server import TEST_API_KEY, SendGridServer
from tests.helpers import SAMPLE_SLUG, FixedClock, copy_sample_folder


def _write_audience(path: Path, count: int) -> list[str]:
    emails = [f"reader{i:05d}@example.com" for i in range(count)]
    with path.open("w", encoding="utf-8") as handle:
        handle.write("email,first_name\n")
        handle.writelines(f"{email},Reader{i}\n" for i, email in enumerate(emails))
    return emails


def _folder(tmp_path: Path, audience: int) -> tuple[Path, list[str]]:
    config = copy_sample_folder(tmp_path / "clinic")
    text = config.read_text(encoding="utf-8")
    # One lane: these tests script the requests in the order a single lane sends them.
    text = text.replace('transport = "outbox"', 'transport = "sendgrid"\nconcurrency = 1')
    config.write_text(text + "\n[sendgrid]\ntimeout = 20\nmax_retries = 2\n", encoding="utf-8")
    emails = _write_audience(tmp_path / "audience.csv", audience)
    return config, emails


def _environ(server: SendGridServer, database_url: str | None = None) -> dict[str, str]:
    environ = {
        "SENDGRID_API_KEY": TEST_API_KEY,
        "SENDGRID_API_HOST": server.url,
        "NEWSLETTER_SECRET_KEY": "fault-tests",
    }
    if database_url:
        environ["NEWSLETTER_DATABASE_URL"] = database_url
    return environ


class NoSleep:
    """Records waits instead of sleeping, so retries cost no time."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def _open(config: Path, server: SendGridServer, tmp_path: Path) -> Newsletter:
    newsletter = Newsletter(load_settings(config, environ=_environ(server)), clock=FixedClock())
    report = import_csv(newsletter.sessions, tmp_path / "audience.csv")
    assert not report.problems
    return newsletter


def _send(newsletter: Newsletter, sleep: NoSleep | None = None) -> SendReport:
    import pipeline.newsletter as service

    original = service.make_transport
    waits = sleep or NoSleep()

    def with_fake_sleep(settings, clock, _sleep=None):  # type: ignore[no-untyped-def]
        return original(settings, clock, waits)

    service.make_transport = with_fake_sleep  # type: ignore[assignment]
    try:
        return newsletter.send(SAMPLE_SLUG)
    finally:
        service.make_transport = original


def _adds_up(c: CampaignCounts) -> None:
    assert c.sent + c.failed + c.uncertain + c.suppressed + c.pending + c.sending == c.planned


def _exactly_once(server: SendGridServer, emails: list[str]) -> None:
    delivered = collections.Counter(server.delivered_addresses())
    assert set(delivered) == set(emails)
    assert max(delivered.values()) == 1


# -- the CLI as a real process ----------------------------------------------------


def _cli(
    config: Path, server: SendGridServer, *args: str, database_url: str | None = None
) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NEWSLETTER_", "SENDGRID_"))}
    env.update(_environ(server, database_url))
    return subprocess.Popen(
        [sys.executable, "-m", "pipeline.cli", "--config", str(config), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _import(
    config: Path, server: SendGridServer, tmp_path: Path, database_url: str | None = None
) -> None:
    audience = str(tmp_path / "audience.csv")
    proc = _cli(config, server, "subscribers", "import", audience, database_url=database_url)
    assert proc.wait(timeout=120) == 0, proc.stderr.read() if proc.stderr else ""


def _status(
    config: Path, server: SendGridServer, database_url: str | None = None
) -> dict[str, int]:
    import json

    proc = _cli(config, server, "status", SAMPLE_SLUG, "--json", database_url=database_url)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    counts: dict[str, int] = json.loads(out)
    return counts
