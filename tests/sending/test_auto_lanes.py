"""With nothing tuned, an API send keeps several requests in flight (issue 18).

Deterministic: every request is held by the loopback SendGrid until the test
releases it, so seeing four requests read while none has been answered proves
four lanes overlap; one lane at a time would never send a second.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.config import load_settings
from pipeline.newsletter import Newsletter, SendReport
from pipeline.sending.plan import API_LANES, SendPlan
from pipeline.subscribers import import_csv
from tests.fakes.sendgrid_server import TEST_API_KEY, Hang, SendGridServer
from tests.helpers import SAMPLE_SLUG, copy_sample_folder

AUDIENCE = 800
BATCH = 100
HELD = Hang(accept=True, answer_on_release=True)


@pytest.fixture(name="server")
def server_fixture(monkeypatch: pytest.MonkeyPatch) -> Iterator[SendGridServer]:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    with SendGridServer(hang_timeout=60) as server:
        yield server


def _newsletter(tmp_path: Path, server: SendGridServer, database_url: str) -> Newsletter:
    config = copy_sample_folder(tmp_path / "clinic")
    text = config.read_text(encoding="utf-8")
    # The sample's [sending] with only the transport and batch size changed: no tuning.
    text = text.replace('transport = "outbox"', 'transport = "sendgrid"')
    text = text.replace("batch_size = 1000", f"batch_size = {BATCH}")
    config.write_text(text + "\n[sendgrid]\ntimeout = 60\n", encoding="utf-8")
    environ = {
        "SENDGRID_API_KEY": TEST_API_KEY,
        "SENDGRID_API_HOST": server.url,
        "NEWSLETTER_SECRET_KEY": "auto-lanes",
        "NEWSLETTER_DATABASE_URL": database_url,
    }
    newsletter = Newsletter(load_settings(config, environ=environ))
    csv = tmp_path / "audience.csv"
    csv.write_text(
        "email\n" + "".join(f"reader{i:04d}@example.com\n" for i in range(AUDIENCE)),
        encoding="utf-8",
    )
    assert not import_csv(newsletter.sessions, csv).problems
    return newsletter


def test_default_settings_keep_several_api_requests_in_flight(
    server: SendGridServer, tmp_path: Path, database_url: str
) -> None:
    newsletter = _newsletter(tmp_path, server, database_url)
    assert newsletter.settings.sending.concurrency is None  # auto, as `init` writes it
    plans: list[SendPlan] = []
    reports: list[SendReport] = []
    server.always(HELD)
    sender = threading.Thread(
        target=lambda: reports.append(newsletter.send(SAMPLE_SLUG, on_plan=plans.append)),
        daemon=True,
    )
    sender.start()
    try:
        held = server.wait_for_requests(API_LANES, timeout=30)
        # Read, and not one answered yet: all of them are in flight at once.
        assert all(r.status is None for r in held)
    finally:
        server.always(None)
        server.release()
        sender.join(timeout=60)
    assert not sender.is_alive()
    # A campaign this small does not repay a fork: one process.
    assert plans == [SendPlan(API_LANES, 1)]
    [report] = reports
    assert report.complete and report.counts.sent == AUDIENCE
    delivered = collections.Counter(server.delivered_addresses())
    assert len(delivered) == AUDIENCE and max(delivered.values()) == 1
    newsletter.close()
