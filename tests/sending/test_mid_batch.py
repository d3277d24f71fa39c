"""What happens while a batch is out: someone leaves, or the sender is told to stop.

Real servers at the outermost seam (aiosmtpd, the loopback SendGrid), real
databases (SQLite and PostgreSQL), and for the stop a real ``newsletter send``
process receiving SIGTERM.
"""

from __future__ import annotations

import collections
import concurrent.futures
import signal
import time
from collections.abc import Collection
from pathlib import Path

import pytest
from sqlalchemy import select

from pipeline.config import load_settings
from pipeline.newsletter import Newsletter
from pipeline.sending.transports.base import RECHECK_EVERY
from pipeline.store.ledger import Ledger
from pipeline.store.models import Delivery, DeliveryStatus, Subscriber
from pipeline.subscribers import import_csv, remove_subscriber
from tests.fakes.sendgrid_server import (
    Reply,
    SendGridServer,
    sendgrid_server_fixture,  # noqa: F401 - registers the fixture
)
from tests.fakes.smtp_server import SmtpTestServer
from tests.helpers import SAMPLE_SLUG, FixedClock, copy_sample_folder
from tests.sending.delivery_faults.helpers import (
    _cli,
    _folder,
    _import,
    _status,
    _write_audience,
)

AUDIENCE = 60


def _smtp_newsletter(tmp_path: Path, port: int, database_url: str) -> tuple[Newsletter, list[str]]:
    config = copy_sample_folder(tmp_path / "clinic")
    text = config.read_text(encoding="utf-8")
    # One lane (one connection): the tests follow a single batch through the server.
    text = text.replace('transport = "outbox"', 'transport = "smtp"\nconcurrency = 1')
    text = text.replace('host = "smtp.example.com"', 'host = "127.0.0.1"')
    text = text.replace("port = 587", f"port = {port}")
    text = text.replace('security = "starttls"', 'security = "none"')
    config.write_text(text, encoding="utf-8")
    emails = _write_audience(tmp_path / "audience.csv", AUDIENCE)
    environ = {"NEWSLETTER_SECRET_KEY": "mid-batch", "NEWSLETTER_DATABASE_URL": database_url}
    newsletter = Newsletter(load_settings(config, environ=environ), clock=FixedClock())
    report = import_csv(newsletter.sessions, tmp_path / "audience.csv")
    assert not report.problems
    return newsletter, emails


def _row_status(newsletter: Newsletter, email: str) -> DeliveryStatus:
    with newsletter.sessions() as session:
        status = session.scalar(
            select(Delivery.status)
            .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
            .where(Subscriber.email == email)
        )
    assert status is not None
    return DeliveryStatus(status)


def test_someone_who_unsubscribes_mid_smtp_batch_is_suppressed_not_mailed(
    tmp_path: Path, database_url: str
) -> None:
    with SmtpTestServer() as server:
        newsletter, emails = _smtp_newsletter(tmp_path, server.port, database_url)
        assert newsletter.settings.sending.batch_size >= AUDIENCE  # one batch, claimed at once
        leaver = emails[40]
        problems: list[BaseException] = []

        def unsubscribe_after_fifth(number: int) -> None:
            # The server thread, while the sender waits for the 250 of message 5:
            # the leaver's row was claimed (sending) long before this.
            if number != 5:
                return
            try:
                remove_subscriber(newsletter.sessions, leaver)
            except BaseException as exc:  # handed to the test thread
                problems.append(exc)

        server.handler.on_message = unsubscribe_after_fifth
        report = newsletter.send(SAMPLE_SLUG)

        assert problems == []
        delivered = collections.Counter(a for m in server.messages for a in m.rcpt_tos)
        assert leaver not in delivered
        assert set(delivered) == set(emails) - {leaver} and max(delivered.values()) == 1
        c = report.counts
        assert (c.sent, c.suppressed, c.pending, c.sending) == (AUDIENCE - 1, 1, 0, 0)
        assert report.complete
        assert _row_status(newsletter, leaver) is DeliveryStatus.SUPPRESSED


def test_the_recheck_costs_one_query_per_few_dozen_messages(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The outbox is a per-message transport too; count the real ledger's answers.
    config = copy_sample_folder(tmp_path / "clinic")
    _write_audience(tmp_path / "audience.csv", 100)
    environ = {"NEWSLETTER_SECRET_KEY": "mid-batch", "NEWSLETTER_DATABASE_URL": database_url}
    newsletter = Newsletter(load_settings(config, environ=environ), clock=FixedClock())
    import_csv(newsletter.sessions, tmp_path / "audience.csv")
    asked: list[int] = []
    real = Ledger.still_wanted

    def counted(self: Ledger, subscriber_ids: Collection[int]) -> set[int]:
        asked.append(len(subscriber_ids))
        return real(self, subscriber_ids)

    monkeypatch.setattr(Ledger, "still_wanted", counted)
    report = newsletter.send(SAMPLE_SLUG)
    assert report.counts.sent == 100
    assert asked == [RECHECK_EVERY] * 4


def test_sigterm_during_a_429_wait_exits_quickly_with_the_batch_pending(
    sendgrid_server: SendGridServer, tmp_path: Path, database_url: str
) -> None:
    config, _emails = _folder(tmp_path, 50)
    _import(config, sendgrid_server, tmp_path, database_url)
    # An hour away: the sender would wait max_rate_limit_wait (300 s) for it.
    sendgrid_server.always(Reply.rate_limited(reset=time.time() + 3600))
    command = ("send", SAMPLE_SLUG, "--yes", "--skip-preflight")  # preflight is not the point
    sender = _cli(config, sendgrid_server, *command, database_url=database_url)
    try:
        sendgrid_server.wait_for_requests(1, timeout=60)
        # The 429 is on its way back; the sender is (or is about to be) waiting.
        sender.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        assert sender.stderr is not None
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            # What the run chose comes first, once, before the first request.
            plan = pool.submit(sender.stderr.readline).result(timeout=10)
            line = pool.submit(sender.stderr.readline).result(timeout=10)
        assert plan.strip() == "sending with 1 lane in 1 process"
        assert "stopping" in line
        _out, err = sender.communicate(timeout=10)
        took = time.monotonic() - signalled
    finally:
        if sender.poll() is None:
            sender.kill()
            sender.wait(timeout=10)
    assert took < 10
    assert sender.returncode == 1, err  # stopped early: not everything was sent
    assert "stopped on request" in err
    counts = _status(config, sendgrid_server, database_url)
    # The batch was never handed over: back to pending, not in doubt.
    assert (counts["pending"], counts["sending"], counts["uncertain"], counts["sent"]) == (
        50,
        0,
        0,
        0,
    )
    assert sendgrid_server.delivered_addresses() == []
    assert len(sendgrid_server.requests) == 1
