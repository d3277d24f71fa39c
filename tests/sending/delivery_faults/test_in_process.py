"""One sender in this process: SendGrid's answers and faults, lanes, a missing key,
and the same promise through a real SMTP server."""

from __future__ import annotations

import collections
from pathlib import Path

import pytest

from pipeline.config import load_settings
from pipeline.errors import PipelineError
from pipeline.newsletter import Newsletter
from pipeline.subscribers import import_csv
from tests.fakes.sendgrid_server import TEST_API_KEY, Drop, Reply, SendGridServer
from tests.helpers import SAMPLE_SLUG, FixedClock, copy_sample_folder
from tests.sending.delivery_faults.helpers import (
    NoSleep,
    _adds_up,
    _exactly_once,
    _folder,
    _open,
    _send,
    _write_audience,
)


def test_2500_subscribers_each_exactly_once(
    sendgrid_server: SendGridServer, clinic: tuple[Path, list[str]], tmp_path: Path
) -> None:
    config, emails = clinic
    report = _send(_open(config, sendgrid_server, tmp_path))
    assert report.complete and report.counts.sent == 2500
    assert [len(r.body["personalizations"]) for r in sendgrid_server.accepted()] == [
        1000,
        1000,
        500,
    ]
    _exactly_once(sendgrid_server, emails)
    # A second run sends nothing at all.
    _send(_open(config, sendgrid_server, tmp_path))
    assert len(sendgrid_server.requests) == 3


def test_ten_thousand_arrive_as_ten_requests_of_a_thousand(
    sendgrid_server: SendGridServer, tmp_path: Path
) -> None:
    config, emails = _folder(tmp_path, 10_000)
    report = _send(_open(config, sendgrid_server, tmp_path))
    assert report.counts.sent == 10_000
    assert [len(r.body["personalizations"]) for r in sendgrid_server.requests] == [1000] * 10
    _exactly_once(sendgrid_server, emails)


def test_429_storm_waits_and_delivers_everyone(
    sendgrid_server: SendGridServer, clinic: tuple[Path, list[str]], tmp_path: Path
) -> None:
    config, emails = clinic
    sendgrid_server.script(*[Reply.rate_limited() for _ in range(6)], None, Reply.rate_limited())
    waits = NoSleep()
    report = _send(_open(config, sendgrid_server, tmp_path), waits)
    assert report.complete and len(waits.calls) == 7
    _exactly_once(sendgrid_server, emails)


def test_500_on_one_batch_is_retried(
    sendgrid_server: SendGridServer, clinic: tuple[Path, list[str]], tmp_path: Path
) -> None:
    config, emails = clinic
    sendgrid_server.script(None, Reply.error(500, "internal"), None)
    report = _send(_open(config, sendgrid_server, tmp_path))
    assert report.complete
    _exactly_once(sendgrid_server, emails)


def test_400_fails_that_batch_with_sendgrids_reason_and_the_rest_go_on(
    sendgrid_server: SendGridServer, clinic: tuple[Path, list[str]], tmp_path: Path
) -> None:
    config, emails = clinic
    sendgrid_server.script(
        None, Reply.error(400, "The from email does not match a verified Sender")
    )
    newsletter = _open(config, sendgrid_server, tmp_path)
    report = _send(newsletter)
    c = report.counts
    assert (c.sent, c.failed, c.pending, c.uncertain) == (1500, 1000, 0, 0)
    _adds_up(c)
    assert set(sendgrid_server.delivered_addresses()) == set(emails[:1000] + emails[2000:])
    campaign = newsletter.ledger.get_campaign(SAMPLE_SLUG)
    assert campaign is not None
    from sqlalchemy import select

    from pipeline.store.models import Delivery, DeliveryStatus

    with newsletter.sessions() as session:
        errors = set(
            session.scalars(select(Delivery.error).where(Delivery.status == DeliveryStatus.FAILED))
        )
    assert any("verified Sender" in (e or "") for e in errors)


def test_401_stops_at_once_and_a_later_run_resumes(
    sendgrid_server: SendGridServer, clinic: tuple[Path, list[str]], tmp_path: Path
) -> None:
    config, emails = clinic
    sendgrid_server.script(None, Reply.error(401, "The provided authorization grant is invalid"))
    newsletter = _open(config, sendgrid_server, tmp_path)
    first = _send(newsletter)
    assert first.stopped is not None and "401" in first.stopped
    assert TEST_API_KEY not in first.stopped
    assert (first.counts.sent, first.counts.pending) == (1000, 1500)
    assert len(sendgrid_server.requests) == 2  # nothing tried after the refusal
    second = _send(newsletter)
    assert second.complete
    _exactly_once(sendgrid_server, emails)


def test_dropped_connection_marks_only_that_batch_uncertain(
    sendgrid_server: SendGridServer, clinic: tuple[Path, list[str]], tmp_path: Path
) -> None:
    config, emails = clinic
    sendgrid_server.script(None, Drop(accept=True))
    newsletter = _open(config, sendgrid_server, tmp_path)
    c = _send(newsletter).counts
    assert (c.sent, c.uncertain) == (1500, 1000)
    _adds_up(c)
    _exactly_once(sendgrid_server, emails)  # the server did take the dropped batch
    resent = newsletter.send(SAMPLE_SLUG, resend_uncertain=True)
    assert resent.requeued == 1000 and resent.complete
    # The owner asked for duplicates rather than misses: exactly those 1000 repeat.
    repeats = [
        e for e, n in collections.Counter(sendgrid_server.delivered_addresses()).items() if n > 1
    ]
    assert len(repeats) == 1000


def test_missing_api_key_is_one_clear_error(tmp_path: Path) -> None:
    config, _ = _folder(tmp_path, 1)
    with pytest.raises(PipelineError, match="SENDGRID_API_KEY"):
        newsletter = Newsletter(load_settings(config, environ={"NEWSLETTER_SECRET_KEY": "k"}))
        import_csv(newsletter.sessions, tmp_path / "audience.csv")
        newsletter.send(SAMPLE_SLUG)


def test_2500_subscribers_through_smtp_each_exactly_once(tmp_path: Path) -> None:
    from tests.fakes.smtp_server import SmtpTestServer

    config = copy_sample_folder(tmp_path / "clinic")
    emails = _write_audience(tmp_path / "audience.csv", 2500)
    with SmtpTestServer() as server:
        text = config.read_text(encoding="utf-8")
        text = text.replace('transport = "outbox"', 'transport = "smtp"')
        text = text.replace('host = "smtp.example.com"', 'host = "127.0.0.1"')
        text = text.replace("port = 587", f"port = {server.port}")
        text = text.replace('security = "starttls"', 'security = "none"')
        config.write_text(text, encoding="utf-8")
        newsletter = Newsletter(
            load_settings(config, environ={"NEWSLETTER_SECRET_KEY": "smtp"}), clock=FixedClock()
        )
        import_csv(newsletter.sessions, tmp_path / "audience.csv")
        server.refuse(emails[7], code=550)
        server.drop_after(1200)  # the server hangs up once mid-campaign
        report = newsletter.send(SAMPLE_SLUG)
        c = report.counts
        assert (c.sent, c.failed, c.pending, c.uncertain) == (2499, 1, 0, 0)
        delivered = collections.Counter(address for m in server.messages for address in m.rcpt_tos)
        assert set(delivered) == set(emails) - {emails[7]}
        assert max(delivered.values()) == 1
        assert newsletter.send(SAMPLE_SLUG).counts.sent == 2499  # a rerun sends nothing
        assert len(server.messages) == 2499


def test_several_lanes_in_one_sender_deliver_each_address_once(
    sendgrid_server: SendGridServer, tmp_path: Path
) -> None:
    config, emails = _folder(tmp_path, 5000)
    text = config.read_text(encoding="utf-8")
    text = text.replace("batch_size = 1000", "batch_size = 500")
    text = text.replace("concurrency = 1", "concurrency = 3")
    config.write_text(text, encoding="utf-8")
    newsletter = _open(config, sendgrid_server, tmp_path)
    assert newsletter.settings.sending.concurrency == 3
    report = _send(newsletter)
    assert report.complete and report.counts.sent == 5000
    assert len(sendgrid_server.requests) == 10
    _exactly_once(sendgrid_server, emails)
