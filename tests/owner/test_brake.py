"""Issue 16, the automatic brake: too many bounces pause a campaign for its owner.

A real SMTP server (aiosmtpd) answers ``550 5.1.1`` for 12 of 100 recipients;
the campaign pauses once the bounce rate passes 5% after 50 sends, with the
rest pending (not failed), the owner is alerted with the numbers, ``status``
says why, no worker picks it up, and ``send --yes`` finishes it with nothing
sent twice. SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from pipeline.config import load_settings
from pipeline.newsletter import Newsletter
from pipeline.sending.brake import Brake, BrakeCounts, BrakeLimits, decide, is_brake
from pipeline.sending.worker import Worker
from pipeline.store.models import WaitingFor
from pipeline.subscribers import import_csv
from tests.fakes.smtp_server import SmtpTestServer
from tests.helpers import SAMPLE_SLUG, copy_sample_folder
from tests.owner.test_owner import FIRING, OWNER, _open, cli, set_owner, text_of

LIMITS = BrakeLimits(max_bounce_rate=0.05, max_complaint_rate=0.001)


def test_the_rule_waits_for_50_sends_and_compares_rates_with_the_limits() -> None:
    assert decide(BrakeCounts(49, 20, 0, pending=10), LIMITS) is None  # too early to judge
    assert decide(BrakeCounts(100, 5, 0, pending=10), LIMITS) is None  # 5% is not above 5%
    trip = decide(BrakeCounts(100, 6, 0, pending=10), LIMITS)
    assert trip is not None and trip.what == "bounces" and is_brake(trip.reason)
    assert "6 bounces in 100 sends (6.0%, above the limit of 5.0%)" in trip.reason
    complaints = decide(BrakeCounts(1000, 0, 2, pending=1), LIMITS)
    assert complaints is not None and complaints.what == "complaints"
    assert decide(BrakeCounts(100, 60, 0, pending=0), LIMITS) is None  # nothing left to hold


def test_after_the_owner_looked_only_what_follows_counts() -> None:
    seen = BrakeCounts(50, 7, 0)
    assert decide(BrakeCounts(80, 9, 0, pending=20), LIMITS, seen) is None  # 30 new sends
    assert decide(BrakeCounts(100, 9, 0, pending=20), LIMITS, seen) is None  # 2 in 50: 4%
    again = decide(BrakeCounts(100, 11, 0, pending=20), LIMITS, seen)
    assert again is not None and (again.count, again.sends) == (4, 50)


def _folder(tmp_path: Path, server: SmtpTestServer, database_url: str) -> tuple[Path, list[str]]:
    config = copy_sample_folder(tmp_path / "clinic")
    set_owner(config, f'"{OWNER}"')
    text = config.read_text(encoding="utf-8")
    text = text.replace('transport = "outbox"', 'transport = "smtp"')
    text = text.replace("batch_size = 1000", "batch_size = 10\nconcurrency = 1\nprocesses = 1")
    text = text.replace('host = "smtp.example.com"', f'host = "{server.host}"')
    text = text.replace("port = 587", f"port = {server.port}")
    text = text.replace('security = "starttls"', 'security = "none"\nmax_retries = 0')
    assert "batch_size = 10\n" in text
    config.write_text(text, encoding="utf-8")
    people = [f"patient{i:03d}@example.com" for i in range(100)]
    csv = tmp_path / "people.csv"
    csv.write_text("email\n" + "\n".join(people) + "\n", encoding="utf-8")
    newsletter = Newsletter(load_settings(config))
    assert not import_csv(newsletter.sessions, csv).problems
    newsletter.close()
    return config, people


def test_12_of_100_refused_pause_the_campaign_and_send_yes_finishes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str
) -> None:
    monkeypatch.setenv("NEWSLETTER_SECRET_KEY", "brake-tests")
    monkeypatch.setenv("NEWSLETTER_DATABASE_URL", database_url)
    monkeypatch.delenv("NEWSLETTER_CONFIG", raising=False)
    with SmtpTestServer() as server:
        config, people = _folder(tmp_path, server, database_url)
        refused = people[::8][:12]  # one in eight: 7 among the first 50
        assert len(refused) == 12
        for address in refused:
            server.refuse(address)  # 550 5.1.1 ... User unknown
        newsletter = _open(config, FIRING)
        report = newsletter.send(SAMPLE_SLUG)
        c = report.counts
        # Judged after each batch of 10 from 50 sends on: 7 of 50 is 14%, above 5%.
        assert (c.sent, c.failed, c.pending, c.uncertain) == (43, 7, 50, 0)
        assert report.stop is not None and report.stop.waiting_for is WaitingFor.OWNER
        assert "7 bounces in 50 sends (14.0%, above the limit of 5.0%)" in report.stop.reason
        [alert] = [m for m in server.messages if OWNER in m.rcpt_tos]
        body = text_of(alert.parsed())
        assert "paused by the automatic brake" in body and "7 bounces in 50 sends" in body
        status = cli(config, "status", SAMPLE_SLUG, "--json")
        shown = json.loads(status.stdout)
        assert shown["pending"] == 50 and shown["failed"] == 7
        assert shown["stopped"]["waiting_for"] == "owner"
        assert "bounce brake" in shown["stopped"]["reason"]
        assert "bounce brake" in cli(config, "status", SAMPLE_SLUG).stdout
        assert Worker(newsletter).run_once().campaigns == 0  # it waits for the owner

        # The owner looked: `send --yes` resumes; the same numbers do not trip it again.
        resumed = cli(config, "send", SAMPLE_SLUG, "--yes")
        newsletter.close()
        final = json.loads(cli(config, "status", SAMPLE_SLUG, "--json").stdout)
        assert (final["sent"], final["failed"], final["pending"]) == (88, 12, 0), resumed.stderr
        assert final.get("stopped") is None
        subscribers = [r for m in server.messages for r in m.rcpt_tos if r != OWNER]
        assert len(subscribers) == 88 and max(Counter(subscribers).values()) == 1
        assert not set(subscribers) & set(refused)
        owner = [m for m in server.messages if OWNER in m.rcpt_tos]
        assert [str(m.parsed()["Subject"]).split(":")[0] for m in owner] == ["Paused", "Sent"]
        listed = json.loads(cli(config, "subscribers", "list", "--json").stdout)
        bounced = sorted(p["email"] for p in listed if p["status"] == "bounced")
        assert bounced == sorted(refused)


class _Readings:
    """The brake's store in memory, counting how often the full count is asked for."""

    def __init__(self, troubles: tuple[int, int], counts: tuple[int, int, int, int]) -> None:
        self.troubles_now = troubles
        self.counts_now = counts
        self.full_counts = 0

    def counts(self, campaign_id: int) -> tuple[int, int, int, int]:
        self.full_counts += 1
        return self.counts_now

    def troubles(self, campaign_id: int) -> tuple[int, int]:
        return self.troubles_now

    def baseline(self, campaign_id: int) -> tuple[int, int, int] | None:
        return None

    def release(self, now: object, campaign_id: int | None = None) -> int:
        return 0


def test_a_healthy_send_never_counts_its_rows_and_a_bounce_makes_it_count() -> None:
    readings = _Readings(troubles=(0, 0), counts=(1000, 0, 0, 5000))
    brake = Brake(BrakeLimits(max_bounce_rate=0.05, max_complaint_rate=0.001), readings)
    assert [brake(1) for _ in range(20)] == [None] * 20
    assert readings.full_counts == 0  # no bounce, no complaint: no rate to judge
    readings.troubles_now, readings.counts_now = (80, 0), (1000, 80, 0, 5000)
    reason = brake(1)
    assert readings.full_counts == 1
    assert reason is not None and is_brake(reason) and "80 bounces in 1000 sends" in reason
