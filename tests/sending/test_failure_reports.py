"""The owner sees what went wrong, and can send again what may be fixed (issue 11, point 10).

Real parts throughout: the `newsletter` command in a subprocess, the loopback
SendGrid server, an aiosmtpd server, and the ledger on SQLite and PostgreSQL.
"""

from __future__ import annotations

import collections
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from pipeline.cli.status_view import counts_table, short_holder
from pipeline.config import load_settings
from pipeline.newsletter import Newsletter
from pipeline.sending.transports.smtp import mailbox_does_not_exist
from pipeline.store.models import SubscriberStatus
from pipeline.subscribers import import_csv, iter_subscribers
from tests.fakes.sendgrid_server import (
    TEST_API_KEY,
    Reply,
    SendGridServer,
    sendgrid_server_fixture,  # noqa: F401 - registers the fixture
)
from tests.fakes.smtp_server import SmtpTestServer
from tests.helpers import SAMPLE_SLUG, FixedClock, copy_sample_folder

REFUSAL = "The from address does not match a verified Sender Identity"


def _cli(
    config: Path, *args: str, env: dict[str, str], columns: int = 200
) -> subprocess.CompletedProcess[str]:
    environ = {
        k: v for k, v in os.environ.items() if not k.startswith(("NEWSLETTER_", "SENDGRID_"))
    }
    environ.update({"NEWSLETTER_SECRET_KEY": "report-tests", "COLUMNS": str(columns), **env})
    return subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "--config", str(config), *args],
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _audience(path: Path, emails: list[str]) -> Path:
    path.write_text(
        "email,first_name\n" + "".join(f"{e},Reader\n" for e in emails), encoding="utf-8"
    )
    return path


# -- SendGrid: a batch refused with 400 ----------------------------------------------


def test_a_refused_batch_is_shown_grouped_and_retry_failed_sends_it_once(
    sendgrid_server: SendGridServer, tmp_path: Path, database_url: str
) -> None:
    config = copy_sample_folder(tmp_path / "clinic")
    # One lane: the script refuses the second request, as a single lane sends them.
    text = config.read_text(encoding="utf-8").replace(
        'transport = "outbox"', 'transport = "sendgrid"\nconcurrency = 1'
    )
    config.write_text(text + "\n[sendgrid]\ntimeout = 20\nmax_retries = 1\n", encoding="utf-8")
    emails = [f"reader{i:04d}@example.com" for i in range(1200)]
    csv = _audience(tmp_path / "audience.csv", emails)
    env = {
        "SENDGRID_API_KEY": TEST_API_KEY,
        "SENDGRID_API_HOST": sendgrid_server.url,
        "NEWSLETTER_DATABASE_URL": database_url,
    }
    assert _cli(config, "subscribers", "import", str(csv), env=env).returncode == 0

    # The first request of 1000 is refused as a whole; the second (200) goes.
    sendgrid_server.script(Reply.error(400, REFUSAL))
    # (Preflight's DNS checks are not what this test is about.)
    first = _cli(config, "send", SAMPLE_SLUG, "--yes", "--skip-preflight", env=env)
    assert first.returncode == 1
    reason = f"SendGrid refused the request (400): {REFUSAL}"
    assert f"{SAMPLE_SLUG}: 1000 failed: {reason}" in first.stderr.splitlines()
    assert "--retry-failed sends the 1000 failed row(s) again" in first.stderr

    status = json.loads(_cli(config, "status", SAMPLE_SLUG, "--json", env=env).stdout)
    assert (status["sent"], status["failed"], status["sending"]) == (200, 1000, 0)
    assert status["failures"] == [
        {"reason": reason, "count": 1000, "status": "failed", "kind": "batch"}
    ]
    [listed] = json.loads(_cli(config, "status", "--json", env=env).stdout)
    assert listed["failures"] == status["failures"]
    table = _cli(config, "status", SAMPLE_SLUG, env=env)
    assert f"{SAMPLE_SLUG}: 1000 failed: {reason}" in table.stdout.splitlines()

    # The owner fixed the sender identity: the server now takes everything.
    again = _cli(config, "send", SAMPLE_SLUG, "--yes", "--retry-failed", env=env)
    assert again.returncode == 0, again.stderr
    assert "1000 failed row(s) sent again" in again.stdout
    delivered = collections.Counter(sendgrid_server.delivered_addresses())
    assert set(delivered) == set(emails) and max(delivered.values()) == 1
    after = json.loads(_cli(config, "status", SAMPLE_SLUG, "--json", env=env).stdout)
    assert (after["sent"], after["failed"], after["failures"]) == (1200, 0, [])

    # Nothing left to retry: a further --retry-failed sends nothing.
    assert _cli(config, "send", SAMPLE_SLUG, "--yes", "--retry-failed", env=env).returncode == 0
    assert len(sendgrid_server.delivered_addresses()) == 1200


# -- SMTP: refused for the person ---------------------------------------------------


@pytest.mark.parametrize(
    ("code", "reply", "gone"),
    [
        (550, "5.1.1 <a@example.com>: Recipient address rejected: User unknown", True),
        (550, "5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found", True),
        (550, "5.2.1 The email account that you tried to reach is disabled.", True),
        (553, "5.1.1 bad destination mailbox address", True),
        (550, "No such user here", True),
        (550, "<a@example.com>: user unknown", True),
        (550, "5.7.1 Message rejected by policy", False),
        (552, "5.2.2 Mailbox full", False),
        (550, "Relaying denied", False),
        (554, "5.1.10.2 not a status", False),
        (450, "4.1.1 user unknown, try later", False),
    ],
)
def test_which_refusals_mean_the_mailbox_does_not_exist(code: int, reply: str, gone: bool) -> None:
    assert mailbox_does_not_exist(code, reply.encode()) is gone


def _smtp_newsletter(tmp_path: Path, server: SmtpTestServer, database_url: str) -> Newsletter:
    config = copy_sample_folder(tmp_path / "clinic")
    text = config.read_text(encoding="utf-8").replace('transport = "outbox"', 'transport = "smtp"')
    text = text.replace(
        'host = "smtp.example.com"\nport = 587\nsecurity = "starttls"',
        f'host = "{server.host}"\nport = {server.port}\nsecurity = "none"\nmax_retries = 0',
    )
    config.write_text(text, encoding="utf-8")
    environ = {"NEWSLETTER_SECRET_KEY": "report-tests", "NEWSLETTER_DATABASE_URL": database_url}
    return Newsletter(load_settings(config, environ=environ), clock=FixedClock())


def test_user_unknown_bounces_the_subscriber_and_is_never_retried(
    tmp_path: Path, database_url: str
) -> None:
    emails = [f"reader{i}@example.com" for i in range(6)]
    gone, gone_too, blocked = emails[1], emails[3], emails[4]
    with SmtpTestServer() as server:
        server.refuse(gone)  # 550 5.1.1 ... User unknown
        server.refuse(gone_too, text="No such user here")
        server.refuse(blocked, text="5.7.1 Message rejected by policy")
        newsletter = _smtp_newsletter(tmp_path, server, database_url)
        assert not import_csv(newsletter.sessions, _audience(tmp_path / "a.csv", emails)).problems

        first = newsletter.send(SAMPLE_SLUG)
        c = first.counts
        assert (c.sent, c.failed, c.pending) == (3, 3, 0)
        [report] = newsletter.reports(SAMPLE_SLUG)
        assert [(f.status, f.kind, f.count) for f in report.failures] == [
            ("failed", "recipient", 1)
        ] * 3
        status = {s.email: s.status for s in iter_subscribers(newsletter.sessions)}
        assert status[gone] == status[gone_too] == SubscriberStatus.BOUNCED
        assert status[blocked] == SubscriberStatus.ACTIVE  # refused, but not gone

        # Refused for the person: --retry-failed leaves them alone.
        again = newsletter.send(SAMPLE_SLUG, retry_failed=True)
        assert again.retried == 0 and again.counts.failed == 3
        assert [server.handler.rcpt_attempts(e) for e in (gone, gone_too, blocked)] == [1, 1, 1]

        # The next campaign skips the bounced addresses; the blocked one is tried again.
        later = newsletter.send("massage-guns-are-they-worth-it")
        assert later.counts.planned == 4
        assert [server.handler.rcpt_attempts(e) for e in (gone, gone_too, blocked)] == [1, 1, 2]
        assert collections.Counter(server.recipients)[emails[0]] == 2
    newsletter.close()


# -- the status table --------------------------------------------------------------

LONG_SLUG = "a-very-long-article-slug-about-hip-pain-and-massage-therapy-"[:60]
HOLDER = (
    "worker-container-7f9c2b1e4d5a6f708192a3b4:4242:" + "0" * 32 + ":4026531836:00112233aabbccdd"
)


def _render(table: object, width: int) -> list[str]:
    console = Console(width=width, record=True, force_terminal=False, color_system=None)
    console.print(table)
    return console.export_text().splitlines()


def test_the_status_table_fits_80_columns_and_shows_who_holds_rows_in_flight(
    tmp_path: Path, database_url: str
) -> None:
    assert len(LONG_SLUG) == 60
    config = copy_sample_folder(tmp_path / "clinic")
    source = (tmp_path / "clinic" / "articles" / f"{SAMPLE_SLUG}.md").read_text(encoding="utf-8")
    article = source.replace("---\n", f"---\nslug: {LONG_SLUG}\n", 1).replace("part: 2", "part: 4")
    (tmp_path / "clinic" / "articles" / "long.md").write_text(article, encoding="utf-8")
    env = {"NEWSLETTER_DATABASE_URL": database_url}
    assert _cli(config, "subscribers", "import", "sample-subscribers.csv", env=env).returncode == 0
    environ = {"NEWSLETTER_SECRET_KEY": "report-tests", **env}
    newsletter = Newsletter(load_settings(config, environ=environ), clock=FixedClock())
    campaign, _created = newsletter.plan(LONG_SLUG)
    claim = newsletter.ledger.claim(campaign.id, 2, FixedClock()(), HOLDER)
    assert len(claim.rows) == 2
    newsletter.close()

    shown = _cli(config, "status", env=env, columns=80)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    end = next(i for i, line in enumerate(lines) if line.startswith(LONG_SLUG + ":"))
    table = [line for line in lines[:end] if line.strip()]
    assert all(len(line) <= 80 for line in table), table
    assert "sending" in table[0] and "suppressed" in table[0]
    [row] = [line for line in table if line.startswith(LONG_SLUG[:10])]
    assert "…" in row and row.split()[1:] == ["5", "3", "2", "0", "0", "0", "0"]
    # No part of the slug spills onto a line of its own.
    assert not any(LONG_SLUG[-8:] in line for line in table)
    holder = f"{LONG_SLUG}: 2 sending, held by worker-contai…a6f708192a3b4:4242 since "
    assert any(line.startswith(holder) for line in lines), lines
    as_json = json.loads(_cli(config, "status", LONG_SLUG, "--json", env=env).stdout)
    assert as_json["sending"] == 2 and as_json["in_flight"] == [
        {"holder": HOLDER, "since": "2026-11-25T09:00:00+00:00", "count": 2}
    ]


def test_counts_table_never_folds_a_slug_at_80_columns() -> None:
    from pipeline.store.ledger import CampaignCounts

    rows = [
        CampaignCounts(LONG_SLUG, 1_000_000, 0, 1000, 998_000, 500, 500, 0),
        CampaignCounts("short", 5, 0, 0, 5, 0, 0, 0),
    ]
    lines = _render(counts_table(rows), 80)
    assert all(len(line) <= 80 for line in lines)
    assert len([line for line in lines if line.strip()]) == 3  # header and two rows, one line each
    assert "sending" in lines[0]
    wide = _render(counts_table(rows), 160)
    assert any(LONG_SLUG in line for line in wide)  # shown whole when there is room


def test_short_holder_reads_host_and_pid() -> None:
    assert short_holder("mailer:123") == "mailer:123"
    assert short_holder(HOLDER) == "worker-contai…a6f708192a3b4:4242"
    assert short_holder("odd") == "odd"
