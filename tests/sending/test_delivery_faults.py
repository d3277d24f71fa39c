"""The ledger's promise under faults, through the SendGrid transport and a real server.

Every scenario ends with the same two checks: each subscriber arrived exactly
once (or, for rows the ledger marks uncertain, at most once), and the counts
add up: sent + failed + uncertain + suppressed + pending = planned.
"""

from __future__ import annotations

import collections
import concurrent.futures
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.config import load_settings
from pipeline.errors import PipelineError
from pipeline.newsletter import Newsletter, SendReport
from pipeline.store.ledger import CampaignCounts
from pipeline.subscribers import import_csv
from tests.fakes.sendgrid_server import (
    TEST_API_KEY,
    Drop,
    Hang,
    Reply,
    SendGridServer,
    sendgrid_server_fixture,  # noqa: F401 - registers the fixture
)
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


@pytest.fixture
def clinic(tmp_path: Path) -> Iterator[tuple[Path, list[str]]]:
    yield _folder(tmp_path, 2500)


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


# -- real processes ---------------------------------------------------------------


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


def test_kill_9_mid_campaign_then_resume(
    sendgrid_server: SendGridServer,
    clinic: tuple[Path, list[str]],
    tmp_path: Path,
    database_url: str,
) -> None:
    config, emails = clinic
    db = database_url
    _import(config, sendgrid_server, tmp_path, db)
    sendgrid_server.script(None, Hang(accept=True))
    sender = _cli(config, sendgrid_server, "send", SAMPLE_SLUG, "--yes", database_url=db)
    sendgrid_server.wait_for_requests(2, timeout=60)
    sender.send_signal(signal.SIGKILL)
    sender.wait(timeout=30)
    sendgrid_server.release()

    resume = _cli(config, sendgrid_server, "send", SAMPLE_SLUG, "--yes", database_url=db)
    _out, err = resume.communicate(timeout=120)
    assert resume.returncode == 1, err  # the in-flight batch is in doubt, and said so
    assert "1000 uncertain" in err
    counts = _status(config, sendgrid_server, db)
    assert (counts["sent"], counts["uncertain"], counts["pending"]) == (1500, 1000, 0)
    assert counts["sending"] == 0
    # The hung request had reached the server: everyone has it, nobody twice.
    _exactly_once(sendgrid_server, emails)


def test_one_resend_uncertain_run_after_kill_9_finishes_the_campaign(
    sendgrid_server: SendGridServer,
    clinic: tuple[Path, list[str]],
    tmp_path: Path,
    database_url: str,
) -> None:
    config, emails = clinic
    db = database_url
    _import(config, sendgrid_server, tmp_path, db)
    sendgrid_server.script(None, Hang(accept=True))
    first = ("send", SAMPLE_SLUG, "--yes", "--skip-preflight")  # preflight is not the point here
    sender = _cli(config, sendgrid_server, *first, database_url=db)
    sendgrid_server.wait_for_requests(2, timeout=60)
    sender.send_signal(signal.SIGKILL)
    sender.wait(timeout=30)
    sendgrid_server.release()
    # The killed batch is still `sending`: the flag must expire it before requeueing it.
    resend = _cli(
        config, sendgrid_server, "send", SAMPLE_SLUG, "--resend-uncertain", "--yes", database_url=db
    )
    out, err = resend.communicate(timeout=120)
    assert resend.returncode == 0, err
    assert "1000 uncertain row(s) sent again" in out
    counts = _status(config, sendgrid_server, db)
    assert counts["sent"] == counts["planned"] == 2500
    assert counts["uncertain"] == counts["sending"] == counts["pending"] == 0
    # The owner chose a duplicate over a miss: the batch in doubt went twice, nobody else.
    delivered = collections.Counter(sendgrid_server.delivered_addresses())
    assert set(delivered) == set(emails)
    assert sum(1 for n in delivered.values() if n == 2) == 1000 and max(delivered.values()) == 2


def test_two_senders_at_once_never_send_a_row_twice(
    sendgrid_server: SendGridServer, tmp_path: Path, database_url: str
) -> None:
    config, emails = _folder(tmp_path, 6000)
    text = config.read_text(encoding="utf-8").replace("batch_size = 1000", "batch_size = 250")
    config.write_text(text, encoding="utf-8")
    db = database_url
    _import(config, sendgrid_server, tmp_path, db)
    senders = [
        _cli(config, sendgrid_server, "send", SAMPLE_SLUG, "--yes", database_url=db)
        for _ in range(2)
    ]
    results = [p.communicate(timeout=180) for p in senders]
    for proc, (_out, err) in zip(senders, results, strict=True):
        assert proc.returncode == 0, err
    _exactly_once(sendgrid_server, emails)
    counts = _status(config, sendgrid_server, db)
    assert counts["sent"] == counts["planned"] == 6000


def test_sigterm_finishes_the_batch_in_hand_and_leaves_the_ledger_consistent(
    sendgrid_server: SendGridServer, clinic: tuple[Path, list[str]], tmp_path: Path
) -> None:
    config, emails = clinic
    _import(config, sendgrid_server, tmp_path)
    sendgrid_server.script(Hang(accept=True, answer_on_release=True))
    sender = _cli(config, sendgrid_server, "send", SAMPLE_SLUG, "--yes")
    sendgrid_server.wait_for_requests(1, timeout=60)
    sender.send_signal(signal.SIGTERM)
    # Answer the batch in hand only once the sender has taken the signal in.
    assert sender.stderr is not None
    stderr = sender.stderr

    def _until_stopping() -> str:
        # Preflight's warnings come first; the line that matters follows them.
        for line in iter(stderr.readline, ""):
            if "stopping after the batch in hand" in line:
                return line
        return ""

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        line = pool.submit(_until_stopping).result(timeout=30)
    assert "stopping after the batch in hand" in line
    sendgrid_server.release()
    _out, err = sender.communicate(timeout=60)
    assert sender.returncode == 1, err  # stopped early: not everything was sent
    assert "stopped on request" in err
    counts = _status(config, sendgrid_server)
    assert counts["sending"] == 0 and counts["uncertain"] == 0
    assert counts["sent"] + counts["pending"] == counts["planned"] == 2500
    assert len(sendgrid_server.requests) == 1  # nothing new taken after SIGTERM
    resume = _cli(config, sendgrid_server, "send", SAMPLE_SLUG, "--yes")
    assert resume.wait(timeout=120) == 0
    _exactly_once(sendgrid_server, emails)


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
