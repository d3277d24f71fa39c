"""Campaigns a run left with rows pending: the scheduler alone retries them, with backoff.

Issue 11, point 5. Through the real SendGrid transport and the loopback
SendGrid server (and aiosmtpd for a refused sender); the ledger on SQLite and
PostgreSQL. The scheduler service runs under time-machine (its clock moves by
hand, time flows from there); the backoff sequence is driven by passing
``now`` to the jobs, as the scheduler's poll does with the real clock.
"""

from __future__ import annotations

import collections
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import time_machine

from pipeline.config import load_settings
from pipeline.newsletter import Newsletter
from pipeline.schedule import jobs
from pipeline.schedule.jobs import resume_interrupted, retry_stopped
from pipeline.schedule.service import SchedulerService
from pipeline.store.models import CampaignStatus, WaitingFor
from pipeline.store.oneoffs import OneOffStore
from pipeline.store.stops import StopRecord, StopStore, retry_delay
from pipeline.subscribers import import_csv
from tests.fakes.sendgrid_server import (
    TEST_API_KEY,
    Reply,
    SendGridServer,
    sendgrid_server_fixture,  # noqa: F401 - registers the fixture
)
from tests.fakes.smtp_server import SmtpTestServer
from tests.helpers import SAMPLE_SLUG, FixedClock, copy_sample_folder
from tests.schedule.scheduler_helpers import FAST, messages, wait_for

SUBSCRIBERS = 5
#: A Wednesday: far from the sample schedule's Tuesday 09:00 firing.
T0 = datetime(2026, 12, 2, 1, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


@pytest.fixture(autouse=True)
def _log_info(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="pipeline.scheduler")


@pytest.fixture
def services() -> Iterator[list[SchedulerService]]:
    """Services a test started; any still running are stopped at the end."""
    started: list[SchedulerService] = []
    yield started
    for service in started:
        if service._thread.is_alive():
            service.stop(wait=True)


def _folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str, transport: str
) -> Path:
    """The sample folder on ``transport``, its five subscribers imported into ``database_url``."""
    config = copy_sample_folder(tmp_path / "clinic")
    text = config.read_text(encoding="utf-8")
    text = text.replace('transport = "outbox"', f'transport = "{transport}"')
    # No in-run retries: each run makes one attempt, so every stop is one request.
    text += "\n[sendgrid]\ntimeout = 10\nmax_retries = 0\n"
    config.write_text(text, encoding="utf-8")
    monkeypatch.setenv("NEWSLETTER_SECRET_KEY", "retry-tests")
    monkeypatch.setenv("NEWSLETTER_DATABASE_URL", database_url)
    monkeypatch.delenv("NEWSLETTER_CONFIG", raising=False)
    newsletter = Newsletter(load_settings(config))
    assert not import_csv(newsletter.sessions, config.parent / "sample-subscribers.csv").problems
    newsletter.close()
    return config


@pytest.fixture
def clinic(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    database_url: str,
    sendgrid_server: SendGridServer,
) -> Path:
    """The sample folder sending through the loopback SendGrid server."""
    monkeypatch.setenv("SENDGRID_API_KEY", TEST_API_KEY)
    monkeypatch.setenv("SENDGRID_API_HOST", sendgrid_server.url)
    return _folder(tmp_path, monkeypatch, database_url, "sendgrid")


def _open(config: Path, now: datetime = T0) -> Newsletter:
    return Newsletter(load_settings(config), clock=FixedClock(now))


def _stop(config: Path) -> StopRecord | None:
    newsletter = _open(config)
    try:
        campaign = newsletter.ledger.get_campaign(SAMPLE_SLUG)
        return StopStore(newsletter.sessions).get(campaign.id) if campaign else None
    finally:
        newsletter.close()


def _exactly_once(server: SendGridServer, emails: list[str]) -> None:
    delivered = collections.Counter(server.delivered_addresses())
    assert sorted(delivered) == sorted(emails)
    assert set(delivered.values()) == {1}


def _audience(config: Path) -> list[str]:
    lines = (config.parent / "sample-subscribers.csv").read_text(encoding="utf-8").splitlines()
    return [line.split(",")[0].strip().lower() for line in lines[1:] if line.strip()]


def _finished(config: Path) -> bool:
    newsletter = _open(config)
    try:
        campaign = newsletter.ledger.get_campaign(SAMPLE_SLUG)
        return campaign is not None and campaign.status is CampaignStatus.DONE
    finally:
        newsletter.close()


def _start(config: Path, services: list[SchedulerService]) -> SchedulerService:
    service = SchedulerService(load_settings(config), config, timing=FAST)
    services.append(service)
    service.start()
    assert service.wait_until_leader(20), "the service never became the leader"
    return service


# -- (a) only the scheduler runs: a 5xx stop is retried and finished -----------------------


def test_the_scheduler_alone_retries_a_campaign_sendgrid_5xx_stopped(
    clinic: Path,
    sendgrid_server: SendGridServer,
    services: list[SchedulerService],
    caplog: pytest.LogCaptureFixture,
) -> None:
    sendgrid_server.always(Reply.error(500, "internal error"))
    with time_machine.travel(T0, tick=True) as traveller:
        newsletter = _open(clinic)
        # Planned beforehand (`send --plan-only`), so the firing needs no DNS preflight.
        newsletter.plan(SAMPLE_SLUG)
        service = _start(clinic, services)
        OneOffStore(newsletter.sessions).schedule(
            SAMPLE_SLUG, datetime.now(UTC) + timedelta(seconds=1), datetime.now(UTC)
        )
        newsletter.close()
        # The scheduler fires it; SendGrid answers 500; the run stops with all rows pending.
        assert wait_for(lambda: _stop(clinic) is not None), "the stop was never recorded"
        stop = _stop(clinic)
        assert stop is not None and stop.waiting_for is WaitingFor.RETRY
        assert stop.retry_at is not None
        assert stop.retry_at - stop.stopped_at == 1 * MINUTE
        assert "500" in stop.reason
        assert len(sendgrid_server.requests) == 1
        # A restart keeps the backoff: the new leader does not resume it at once.
        service.stop()
        service = _start(clinic, services)
        assert wait_for(lambda: "not resumed now: its retry is due at" in messages(caplog))
        sendgrid_server.always(None)  # SendGrid is back
        assert len(sendgrid_server.requests) == 1
        # Two minutes on, the scheduler's poll retries it: nobody ran `send` or a worker.
        traveller.shift(2 * MINUTE)
        assert wait_for(lambda: _finished(clinic)), "the scheduler never retried the campaign"
        service.stop()
    _exactly_once(sendgrid_server, _audience(clinic))
    assert len(sendgrid_server.requests) == 2  # one refused, one accepted
    assert _stop(clinic) is None
    newsletter = _open(clinic)
    campaign = newsletter.ledger.get_campaign(SAMPLE_SLUG)
    assert campaign is not None
    counts = newsletter.ledger.counts(campaign)
    newsletter.close()
    assert (counts.sent, counts.pending, counts.failed, counts.uncertain) == (SUBSCRIBERS, 0, 0, 0)
    assert "retry 1 after: " in messages(caplog)


# -- (b) still failing: the retries back off, 1, 2, 4, 8, 16, then every 30 minutes -----------


def test_retries_back_off_and_never_come_sooner(
    clinic: Path, sendgrid_server: SendGridServer
) -> None:
    sendgrid_server.always(Reply.error(503, "unavailable"))
    newsletter = _open(clinic)
    report = newsletter.send(SAMPLE_SLUG)
    newsletter.close()
    assert report.stop is not None and report.counts.pending == SUBSCRIBERS
    waits: list[timedelta] = []
    stop = report.stop
    for _ in range(7):
        due = stop.retry_at
        assert due is not None and stop.waiting_for is WaitingFor.RETRY
        waits.append(due - stop.stopped_at)
        tried = len(sendgrid_server.requests)
        # Neither the poll nor a restarted leader tries it a second early.
        assert retry_stopped(str(clinic), now=due - timedelta(seconds=1)) == []
        assert resume_interrupted(str(clinic), now=due - timedelta(seconds=1)) == []
        assert len(sendgrid_server.requests) == tried
        assert retry_stopped(str(clinic), now=due) == [SAMPLE_SLUG]
        assert len(sendgrid_server.requests) == tried + 1
        assert retry_stopped(str(clinic), now=due) == []  # taken once
        found = _stop(clinic)
        assert found is not None
        stop = found
    assert [w // MINUTE for w in waits] == [1, 2, 4, 8, 16, 30, 30]
    # SendGrid recovers: the next due retry finishes the campaign, each person once.
    sendgrid_server.always(None)
    assert stop.retry_at is not None
    assert retry_stopped(str(clinic), now=stop.retry_at) == [SAMPLE_SLUG]
    _exactly_once(sendgrid_server, _audience(clinic))
    assert _stop(clinic) is None and _finished(clinic)


def test_a_retry_never_starts_a_second_run_of_a_campaign_this_process_is_sending(
    clinic: Path, sendgrid_server: SendGridServer, caplog: pytest.LogCaptureFixture
) -> None:
    sendgrid_server.always(Reply.error(500))
    newsletter = _open(clinic)
    report = newsletter.send(SAMPLE_SLUG)
    newsletter.close()
    assert report.stop is not None and report.stop.retry_at is not None
    sendgrid_server.always(None)
    jobs._sending.add(SAMPLE_SLUG)  # as while another job of this process sends it
    try:
        assert retry_stopped(str(clinic), now=report.stop.retry_at) == []
    finally:
        jobs._sending.discard(SAMPLE_SLUG)
    assert len(sendgrid_server.requests) == 1
    assert "already being sent in this process; not started twice" in messages(caplog)
    later = _stop(clinic)
    assert later is not None and later.retry_at == report.stop.retry_at + 2 * MINUTE


def test_the_backoff_schedule() -> None:
    assert [retry_delay(n) // MINUTE for n in range(1, 9)] == [1, 2, 4, 8, 16, 30, 30, 30]
    assert retry_delay(1000) == 30 * MINUTE


# -- (c) refused credentials: the campaign waits for its owner -----------------------------


def _cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "COLUMNS": "200"},
    )


def test_refused_credentials_wait_for_the_owner_and_status_says_why(
    clinic: Path, sendgrid_server: SendGridServer
) -> None:
    sendgrid_server.always(Reply.error(401, "The provided authorization grant is invalid"))
    newsletter = _open(clinic)
    report = newsletter.send(SAMPLE_SLUG)
    newsletter.close()
    assert report.stop is not None and report.stop.waiting_for is WaitingFor.OWNER
    assert report.stop.retry_at is None and "401" in report.stop.reason
    # However long the scheduler runs, it never tries again on its own.
    for later in (2 * MINUTE, timedelta(hours=1), timedelta(days=30)):
        assert retry_stopped(str(clinic), now=T0 + later) == []
        assert resume_interrupted(str(clinic), now=T0 + later) == []
    assert len(sendgrid_server.requests) == 1
    listed = _cli(clinic, "status", SAMPLE_SLUG, "--json")
    assert listed.returncode == 0, listed.stderr
    stopped = json.loads(listed.stdout)["stopped"]
    assert stopped["waiting_for"] == "owner" and stopped["retry_at"] is None
    assert "SendGrid refused the API key (401)" in stopped["reason"]
    table = _cli(clinic, "status")
    assert table.returncode == 0, table.stderr
    assert "refused the API key (401)" in table.stdout
    assert "waiting for the owner" in table.stdout
    # The owner fixes the key and sends by hand: it finishes, and the wait is over.
    sendgrid_server.always(None)
    sent = _cli(clinic, "send", SAMPLE_SLUG, "--yes")
    assert sent.returncode == 0, sent.stdout + sent.stderr
    _exactly_once(sendgrid_server, _audience(clinic))
    assert _stop(clinic) is None and _finished(clinic)


# -- SMTP: a refused sender waits for the owner; 4xx deferrals are retried -----------------


def _smtp_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: SmtpTestServer) -> Path:
    config = _folder(tmp_path, monkeypatch, f"sqlite:///{tmp_path / 'news.db'}", "smtp")
    text = config.read_text(encoding="utf-8")
    text = text.replace('host = "smtp.example.com"', f'host = "{server.host}"')
    text = text.replace("port = 587", f"port = {server.port}")
    text = text.replace('security = "starttls"', 'security = "none"\nmax_retries = 0')
    config.write_text(text, encoding="utf-8")
    return config


def test_a_refused_sender_waits_for_the_owner_until_schedule_resume(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with SmtpTestServer() as server:
        refusing = True
        handle_mail = server.handler.handle_MAIL

        async def mail_from(*args: object) -> str:
            if refusing:
                return "550 5.7.1 Sender address rejected: not owned by user"
            return await handle_mail(*args)  # type: ignore[arg-type]

        server.handler.handle_MAIL = mail_from  # type: ignore[method-assign,assignment]
        config = _smtp_folder(tmp_path, monkeypatch, server)
        newsletter = _open(config)
        report = newsletter.send(SAMPLE_SLUG)
        newsletter.close()
        assert report.stop is not None and report.stop.waiting_for is WaitingFor.OWNER
        assert "sender news@cloudformmassage.com.au refused: 550" in report.stop.reason
        assert retry_stopped(str(config), now=T0 + timedelta(days=1)) == []
        assert server.messages == []
        refusing = False  # the owner fixed the sender address
        resumed = _cli(config, "schedule", "resume")
        assert resumed.returncode == 0, resumed.stderr
        assert f"{SAMPLE_SLUG}: no longer waiting for the owner" in resumed.stdout
        # Released for a retry now (by the wall clock the CLI runs on).
        assert retry_stopped(str(config)) == [SAMPLE_SLUG]
        assert sorted(server.recipients) == sorted(_audience(config))
    assert _stop(config) is None and _finished(config)


def test_smtp_4xx_deferrals_are_retried_by_the_scheduler(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with SmtpTestServer() as server:
        config = _smtp_folder(tmp_path, monkeypatch, server)
        greylisted = _audience(config)[0]
        server.refuse(greylisted, code=451, times=1)
        newsletter = _open(config)
        report = newsletter.send(SAMPLE_SLUG)
        newsletter.close()
        assert report.counts.pending == 1
        assert report.stop is not None and report.stop.waiting_for is WaitingFor.RETRY
        assert report.stop.retry_at == T0 + 1 * MINUTE
        assert retry_stopped(str(config), now=T0 + 2 * MINUTE) == [SAMPLE_SLUG]
        assert sorted(server.recipients) == sorted(_audience(config))
        assert server.handler.rcpt_attempts(greylisted) == 2
    assert _stop(config) is None and _finished(config)
