"""Several `newsletter worker` processes on one campaign: each row exactly once."""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from pipeline.config import load_settings
from pipeline.newsletter import Newsletter
from pipeline.subscribers import import_csv
from tests.fakes.sendgrid_server import (
    TEST_API_KEY,
    Hang,
    SendGridServer,
    sendgrid_server_fixture,  # noqa: F401 - registers the fixture
)
from tests.helpers import SAMPLE_SLUG, copy_sample_folder

AUDIENCE = 20_000


def _environ(server: SendGridServer, database_url: str) -> dict[str, str]:
    return {
        "SENDGRID_API_KEY": TEST_API_KEY,
        "SENDGRID_API_HOST": server.url,
        "NEWSLETTER_SECRET_KEY": "workers",
        "NEWSLETTER_DATABASE_URL": database_url,
    }


def _worker(config: Path, environ: dict[str, str]) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NEWSLETTER_", "SENDGRID_"))}
    env.update(environ)
    return subprocess.Popen(
        [sys.executable, "-m", "pipeline.cli", "--config", str(config), "worker", "--once"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_four_workers_deliver_every_address_once_and_a_killed_one_loses_nothing(
    sendgrid_server: SendGridServer, tmp_path: Path, database_url: str
) -> None:
    config = copy_sample_folder(tmp_path / "clinic")
    # One batch at a time per worker: the server's script (the 7th request hangs)
    # and the request count below assume it; the auto plan would use 4 lanes.
    text = config.read_text(encoding="utf-8").replace(
        'transport = "outbox"', 'transport = "sendgrid"\nconcurrency = 1\nprocesses = 1'
    )
    config.write_text(text + "\n[sendgrid]\ntimeout = 60\n", encoding="utf-8")
    emails = [f"patient{i:05d}@example.com" for i in range(AUDIENCE)]
    csv = tmp_path / "audience.csv"
    csv.write_text("email\n" + "\n".join(emails) + "\n", encoding="utf-8")
    environ = _environ(sendgrid_server, database_url)
    newsletter = Newsletter(load_settings(config, environ=environ))
    assert not import_csv(newsletter.sessions, csv).problems
    campaign, created = newsletter.plan(SAMPLE_SLUG)
    assert created and newsletter.ledger.counts(campaign).pending == AUDIENCE

    # The 7th request is taken by SendGrid but never answered: its worker hangs.
    sendgrid_server.script(*([None] * 6), Hang(accept=True))
    workers = [_worker(config, environ) for _ in range(4)]
    deadline = time.monotonic() + 240
    while sum(w.poll() is not None for w in workers) < 3 and time.monotonic() < deadline:
        time.sleep(0.2)
    finished = [w for w in workers if w.poll() is not None]
    assert len(finished) == 3, "three workers should finish while one hangs"
    for w in finished:
        assert w.returncode == 0, w.communicate()[1]
    [hung] = [w for w in workers if w.poll() is None]
    hung.send_signal(signal.SIGKILL)  # killed mid-batch
    hung.wait(timeout=30)
    sendgrid_server.release()

    # Another pass finds the dead worker's rows: in doubt, reported, never resent.
    again = _worker(config, environ)
    assert again.wait(timeout=120) == 0, again.communicate()[1]
    counts = newsletter.ledger.counts(campaign)
    assert (counts.sent, counts.uncertain, counts.pending, counts.sending) == (19_000, 1000, 0, 0)
    delivered = collections.Counter(sendgrid_server.delivered_addresses())
    assert set(delivered) == set(emails)
    assert max(delivered.values()) == 1
    assert len(sendgrid_server.requests) == 20
    newsletter.close()


def test_worker_sends_planned_campaigns_then_idles(tmp_path: Path, database_url: str) -> None:
    from pipeline.sending.worker import Worker
    from tests.helpers import FixedClock

    config = copy_sample_folder(tmp_path / "clinic")
    settings = load_settings(
        config, environ={"NEWSLETTER_SECRET_KEY": "w", "NEWSLETTER_DATABASE_URL": database_url}
    )
    newsletter = Newsletter(settings, clock=FixedClock())
    import_csv(newsletter.sessions, config.parent / "sample-subscribers.csv")
    campaign, _ = newsletter.plan(SAMPLE_SLUG)
    assert newsletter.ledger.counts(campaign).sent == 0  # planning sends nothing

    worker = Worker(newsletter, poll_seconds=0.01)
    idles: list[int] = []

    def on_idle() -> None:
        idles.append(1)
        worker.request_stop()

    worker.run_forever(on_idle)
    assert idles == [1]
    assert newsletter.ledger.counts(campaign).sent == 5
    assert len(list((settings.outbox_path / SAMPLE_SLUG).glob("*.eml"))) == 5
    assert worker.run_once().batches == 0  # nothing left: a pass claims nothing
    newsletter.close()
