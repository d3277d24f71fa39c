"""Issue 16, owner notifications: receipts, alerts, the heads-up and its Hold link.

Every message goes through a real transport (the outbox, or aiosmtpd) and is
read back from there; the clock is injected (``now=``), or moved with
time-machine where a real APScheduler runs. The ledger runs on SQLite and
PostgreSQL.
"""

from __future__ import annotations

import email
import json
import logging
import re
import subprocess
import sys
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.policy import default
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from pipeline.config import load_settings
from pipeline.logs import JsonFormatter
from pipeline.newsletter import Newsletter
from pipeline.owner.alerts import watch
from pipeline.schedule.jobs import send_due
from pipeline.store.holds import HoldStore
from pipeline.store.models import WaitingFor
from pipeline.store.notifications import NotificationStore
from pipeline.subscribers import import_csv
from pipeline.web.app import create_app
from tests.fakes.smtp_server import SmtpTestServer
from tests.helpers import SAMPLE_SLUG, FixedClock, copy_sample_folder

SYDNEY = ZoneInfo("Australia/Sydney")
OWNER = "owner@example.com"
#: The sample schedule's first firing after the default test clock: Tuesday 09:00 Sydney.
FIRING = datetime(2026, 12, 1, 9, 0, tzinfo=SYDNEY)
PART_1 = "massage-and-mental-health"


def set_owner(config: Path, value: str) -> None:
    """Set [owner] email in a copy of the sample (where it is commented out)."""
    text = config.read_text(encoding="utf-8")
    line = '# email = "owner@cloudformmassage.com.au"'
    assert line in text
    config.write_text(text.replace(line, f"email = {value}"), encoding="utf-8")


def _folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str) -> Path:
    config = copy_sample_folder(tmp_path / "clinic")
    set_owner(config, f'["{OWNER}"]')
    monkeypatch.setenv("NEWSLETTER_SECRET_KEY", "owner-tests")
    monkeypatch.setenv("NEWSLETTER_DATABASE_URL", database_url)
    monkeypatch.delenv("NEWSLETTER_CONFIG", raising=False)
    newsletter = Newsletter(load_settings(config))
    assert not import_csv(newsletter.sessions, config.parent / "sample-subscribers.csv").problems
    newsletter.close()
    return config


@pytest.fixture
def clinic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str) -> Path:
    """The sample folder (outbox transport) with [owner] email set, subscribers imported."""
    return _folder(tmp_path, monkeypatch, database_url)


def _open(config: Path, now: datetime) -> Newsletter:
    return Newsletter(load_settings(config), clock=FixedClock(now))


def owner_mail(config: Path) -> list[EmailMessage]:
    """What the outbox holds for the owner, oldest first."""
    files = sorted((config.parent / "outbox" / "owner-notifications").glob("*.eml"))
    parsed = [email.message_from_bytes(f.read_bytes(), policy=default) for f in files]
    return [m for m in parsed if isinstance(m, EmailMessage)]


def text_of(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())  # type: ignore[attr-defined]


def cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def kinds(config: Path) -> list[str]:
    newsletter = _open(config, FIRING)
    try:
        return [n.kind for n in NotificationStore(newsletter.sessions).recent()]
    finally:
        newsletter.close()


# -- the receipt ----------------------------------------------------------------------


def test_each_campaign_gives_one_receipt_whose_counts_equal_status_json(clinic: Path) -> None:
    newsletter = _open(clinic, FIRING)
    report = newsletter.send(SAMPLE_SLUG)
    assert report.complete
    newsletter.send(SAMPLE_SLUG)  # a repeat resumes nothing and sends no second receipt
    newsletter.close()
    [receipt] = owner_mail(clinic)
    assert receipt["To"] == OWNER and SAMPLE_SLUG in receipt["Subject"]
    body = text_of(receipt)
    shown = json.loads(body.strip().splitlines()[-1])
    status = cli(clinic, "status", SAMPLE_SLUG, "--json")
    assert status.returncode == 0, status.stderr
    assert shown == json.loads(status.stdout)
    assert "5 planned, 0 pending, 0 sending, 5 sent" in body
    listed = cli(clinic, "notifications", "--json")
    assert listed.returncode == 0, listed.stderr
    [entry] = json.loads(listed.stdout)
    assert (entry["kind"], entry["about"], entry["to"]) == ("receipt", SAMPLE_SLUG, [OWNER])


def test_a_receipt_groups_failures_by_reason_with_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with SmtpTestServer() as server:
        config = _smtp_folder(tmp_path, monkeypatch, server)
        audience = _audience(config)
        for address in audience[:2]:
            server.refuse(address)  # 550 5.1.1 ... User unknown
        newsletter = _open(config, FIRING)
        newsletter.send(SAMPLE_SLUG)
        newsletter.close()
        owner = [m for m in server.messages if OWNER in m.rcpt_tos]
        assert len(owner) == 1
        body = text_of(owner[0].parsed())
    assert re.search(r"- 2 failed: .*5\.1\.1 <address>.*User unknown", body), body
    assert "refused for the person" in body


# -- alerts -----------------------------------------------------------------------------


def test_an_empty_queue_48h_before_a_firing_gives_one_alert_even_after_a_restart(
    clinic: Path,
) -> None:
    for article in (clinic.parent / "articles").glob("*.md"):
        article.unlink()  # the fault: nothing queued
    watch(str(clinic), now=FIRING - timedelta(hours=49))  # not yet: beyond 48 h
    assert owner_mail(clinic) == []
    watch(str(clinic), now=FIRING - timedelta(hours=47))
    watch(str(clinic), now=FIRING - timedelta(hours=46))  # a scheduler restart, same day
    [alert] = owner_mail(clinic)
    assert alert["Subject"] == "Nothing to send at 2026-12-01T09:00:00+11:00"
    assert "the queue is empty" in text_of(alert)
    assert kinds(clinic) == ["queue_empty"]


def test_a_campaign_still_pending_an_hour_after_it_started_is_reported_once(
    clinic: Path,
) -> None:
    started = FIRING
    newsletter = _open(clinic, started)
    campaign, _ = newsletter.plan(SAMPLE_SLUG)
    newsletter.ledger.mark_running(campaign.id, started)  # then the sender died
    newsletter.close()
    watch(str(clinic), now=started + timedelta(minutes=59))
    assert "stalled" not in kinds(clinic)
    watch(str(clinic), now=started + timedelta(minutes=61))
    watch(str(clinic), now=started + timedelta(minutes=90))
    stalled = [m for m in owner_mail(clinic) if "Not finished" in m["Subject"]]
    assert len(stalled) == 1
    assert f"{SAMPLE_SLUG} has 5 unsent" in stalled[0]["Subject"]


def _smtp_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: SmtpTestServer) -> Path:
    config = _folder(tmp_path, monkeypatch, f"sqlite:///{tmp_path / 'smtp.db'}")
    text = config.read_text(encoding="utf-8")
    text = text.replace('transport = "outbox"', 'transport = "smtp"')
    text = text.replace('host = "smtp.example.com"', f'host = "{server.host}"')
    text = text.replace("port = 587", f"port = {server.port}")
    text = text.replace('security = "starttls"', 'security = "none"\nmax_retries = 0')
    config.write_text(text, encoding="utf-8")
    return config


def _audience(config: Path) -> list[str]:
    lines = (config.parent / "sample-subscribers.csv").read_text(encoding="utf-8").splitlines()
    return [line.split(",")[0].strip().lower() for line in lines[1:] if line.strip()]


def test_a_refused_sender_alerts_the_owner_once_as_soon_as_mail_goes_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="pipeline.owner")
    with SmtpTestServer() as server:
        refusing = True
        handle_mail = server.handler.handle_MAIL

        async def mail_from(*args: object) -> str:
            if refusing:
                return "550 5.7.1 Sender address rejected: not owned by user"
            return await handle_mail(*args)  # type: ignore[arg-type]

        server.handler.handle_MAIL = mail_from  # type: ignore[method-assign,assignment]
        config = _smtp_folder(tmp_path, monkeypatch, server)
        newsletter = _open(config, FIRING)
        report = newsletter.send(SAMPLE_SLUG)
        newsletter.close()
        assert report.stop is not None and report.stop.waiting_for is WaitingFor.OWNER
        # The same refused sender cannot carry the alert: it is an error log line, and
        # nothing is recorded as sent, so the next look tries again.
        [failed] = [r for r in caplog.records if r.getMessage().startswith("could not tell")]
        line = json.loads(JsonFormatter().format(failed))
        assert line["notification"] == "needs_owner" and line["about"] == SAMPLE_SLUG
        assert kinds(config) == []
        refusing = False  # the relay accepts the sender again; the campaign still waits
        watch(str(config), now=FIRING + timedelta(minutes=5))
        watch(str(config), now=FIRING + timedelta(minutes=10))
        alerts = [m for m in server.messages if OWNER in m.rcpt_tos]
        assert len(alerts) == 1
        assert f"Stopped: {SAMPLE_SLUG} waits for you" in str(alerts[0].parsed()["Subject"])
        assert server.recipients == [OWNER]  # no subscriber got anything
    assert kinds(config) == ["needs_owner"]


# -- the heads-up and Hold ----------------------------------------------------------------


def test_heads_up_24h_before_and_hold_means_nothing_is_sent_at_the_firing(clinic: Path) -> None:
    watch(str(clinic), now=FIRING - timedelta(hours=25))  # not yet
    assert owner_mail(clinic) == []
    watch(str(clinic), now=FIRING - timedelta(hours=23))
    watch(str(clinic), now=FIRING - timedelta(hours=22))  # once per firing
    [heads_up] = owner_mail(clinic)
    body = text_of(heads_up)
    assert "to 5 subscriber(s)" in body and PART_1 in body
    hold_link = re.search(r"Hold this send: (\S+)", body)
    preview_link = re.search(r"Preview: (\S+)", body)
    assert hold_link is not None and preview_link is not None
    path = hold_link.group(1).removeprefix("http://127.0.0.1:8000")
    newsletter = _open(clinic, FIRING - timedelta(hours=20))
    with TestClient(create_app(newsletter), base_url="http://127.0.0.1:8000") as client:
        preview = client.get(preview_link.group(1).removeprefix("http://127.0.0.1:8000"))
        assert preview.status_code == 200 and "<html" in preview.text.lower()
        page = client.get(path)
        assert page.status_code == 200 and "Hold this send" in page.text
        assert HoldStore(newsletter.sessions).in_force() == []  # GET never holds
        forged = client.post(path, data={"csrf_token": "forged"})
        assert forged.status_code == 400
        assert HoldStore(newsletter.sessions).in_force() == []
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token is not None
        held = client.post(path, data={"csrf_token": token.group(1)})
        assert held.status_code == 200 and "Held" in held.text
        assert client.get(path[:-3] + "xyz").status_code == 400  # a damaged link
    [hold] = HoldStore(newsletter.sessions).in_force()
    assert (hold.firing_at, hold.slug) == (FIRING, PART_1)
    newsletter.close()
    assert send_due(str(clinic), now=FIRING + timedelta(seconds=2)) is None
    assert not (clinic.parent / "outbox" / PART_1).exists()
    queue = cli(clinic, "queue")
    assert "held by the owner" in queue.stdout and "schedule resume" in queue.stdout
    listing = cli(clinic, "schedule", "list", "--json")
    [held_firing] = json.loads(listing.stdout)["held_firings"]
    assert held_firing["at"] == "2026-12-01T09:00:00+11:00" and held_firing["slug"] == PART_1
    resumed = cli(clinic, "schedule", "resume")
    assert "1 held firing(s) released" in resumed.stdout
    assert "held by the owner" not in cli(clinic, "queue").stdout


def test_a_held_firing_plans_nothing_its_article_waits_for_the_next(clinic: Path) -> None:
    from pipeline.cli.schedule import schedule_listing
    from pipeline.owner.alerts import check_queue

    newsletter = _open(clinic, FIRING - timedelta(hours=20))
    before = {entry.slug: entry.planned_at for entry in newsletter.queue()}
    assert before[PART_1] == FIRING
    assert HoldStore(newsletter.sessions).hold(FIRING, PART_1, newsletter.clock())
    # `queue` (and its JSON), the series' "in your inbox on" dates and the
    # dashboard read these: the held firing sends nothing, so PART_1 goes a week on.
    after = {entry.slug: entry.planned_at for entry in newsletter.queue()}
    assert after[PART_1] == FIRING + timedelta(days=7)
    assert all(at is None or at != FIRING for at in after.values())
    # `schedule list` and the dashboard: the held firing sends nothing, PART_1 the next.
    listing = schedule_listing(newsletter)
    assert [(f.at, f.slug) for f in listing.firings[:2]] == [
        (FIRING, None),
        (FIRING + timedelta(days=7), PART_1),
    ]
    assert listing.as_dict()["next_firings"][0]["held"] is True  # type: ignore[index]
    assert [hold.firing_at for hold in listing.holds] == [FIRING]
    # Held on purpose: no "Nothing to send at ..." alert about it (20 h away).
    assert check_queue(newsletter) is False
    newsletter.close()


def test_a_firing_not_held_sends_as_before(clinic: Path) -> None:
    report = send_due(str(clinic), now=FIRING + timedelta(seconds=2))
    assert report is not None and report.counts.sent == 5


def test_no_owner_email_means_nothing_is_sent_or_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = copy_sample_folder(tmp_path / "plain")
    monkeypatch.setenv("NEWSLETTER_SECRET_KEY", "owner-tests")
    monkeypatch.setenv("NEWSLETTER_DATABASE_URL", f"sqlite:///{tmp_path / 'p.db'}")
    newsletter = _open(config, FIRING)
    import_csv(newsletter.sessions, config.parent / "sample-subscribers.csv")
    newsletter.send(SAMPLE_SLUG)
    assert NotificationStore(newsletter.sessions).recent() == []
    newsletter.close()
    assert owner_mail(config) == []


def test_owner_settings_are_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = copy_sample_folder(tmp_path / "bad")
    set_owner(config, '"not an address"')
    monkeypatch.setenv("NEWSLETTER_SECRET_KEY", "owner-tests")
    checked = cli(config, "check")
    assert checked.returncode == 1
    assert "owner.email" in checked.stderr and "not an email address" in checked.stderr


def test_done_when_make_run_with_the_owner_set_leaves_the_receipt_in_the_outbox(
    tmp_path: Path,
) -> None:
    """What a new user does: uncomment [owner] email in the sample, run the demo."""
    config = copy_sample_folder(tmp_path / "clinic")
    set_owner(config, '"owner@cloudformmassage.com.au"')
    env_free = cli(config, "demo", "--no-serve")
    assert env_free.returncode == 0, env_free.stderr
    [receipt] = owner_mail(config)
    assert receipt["To"] == "owner@cloudformmassage.com.au"
    assert f"Sent: {SAMPLE_SLUG}" in receipt["Subject"]
    listed = cli(config, "notifications")
    assert listed.returncode == 0, listed.stderr
    assert "receipt" in listed.stdout and SAMPLE_SLUG in listed.stdout
