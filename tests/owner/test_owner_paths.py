"""Issue 16: a receipt whoever ends the campaign, and the heads-up for one-off sends.

A campaign a ``worker`` or the scheduler runs gives the owner exactly one
receipt, as ``newsletter send`` does; a one-off send gets the heads-up with the
same "Hold this send" link, and a held one-off sends nothing at its time.
Outbox transport, injected clock, SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from pipeline.owner.alerts import watch
from pipeline.schedule.jobs import send_due, send_scheduled_due
from pipeline.sending.worker import Worker
from pipeline.store.holds import HoldStore
from pipeline.store.models import ScheduledSendStatus
from pipeline.store.oneoffs import OneOffStore
from pipeline.web.app import create_app
from tests.helpers import SAMPLE_SLUG
from tests.owner.test_owner import FIRING, OWNER, _folder, _open, cli, owner_mail, text_of

BASE = "http://127.0.0.1:8000"


@pytest.fixture
def clinic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str) -> Path:
    """The sample folder (outbox) with [owner] email set and subscribers imported."""
    return _folder(tmp_path, monkeypatch, database_url)


def receipts(config: Path) -> list[str]:
    return [str(m["Subject"]) for m in owner_mail(config) if str(m["Subject"]).startswith("Sent:")]


def test_a_campaign_a_worker_ends_gives_one_receipt_whoever_looks_again(clinic: Path) -> None:
    newsletter = _open(clinic, FIRING)
    newsletter.plan(SAMPLE_SLUG)  # `send --plan-only`: the workers send it
    assert receipts(clinic) == []
    done = Worker(newsletter).run_once()
    assert done.campaigns == 1 and done.batches >= 1
    [subject] = receipts(clinic)
    assert subject.startswith(f"Sent: {SAMPLE_SLUG}: 5 of 5")
    assert Worker(newsletter).run_once().campaigns == 0  # nothing open any more
    newsletter.send(SAMPLE_SLUG)  # a send by hand afterwards resumes nothing
    newsletter.close()
    assert len(receipts(clinic)) == 1
    [receipt] = [m for m in owner_mail(clinic) if str(m["Subject"]).startswith("Sent:")]
    shown = json.loads(text_of(receipt).strip().splitlines()[-1])
    status = cli(clinic, "status", SAMPLE_SLUG, "--json")
    assert shown == json.loads(status.stdout)


def test_a_campaign_the_scheduler_sends_gives_one_receipt(clinic: Path) -> None:
    report = send_due(str(clinic), now=FIRING + timedelta(seconds=2))
    assert report is not None and report.complete
    assert send_due(str(clinic), now=FIRING + timedelta(seconds=3)) is not None  # next in queue
    subjects = receipts(clinic)
    assert len(subjects) == 2  # one per campaign, each once
    assert len({s.split(":")[1] for s in subjects}) == 2


def test_a_one_off_send_gets_a_heads_up_and_holding_it_sends_nothing_at_its_time(
    clinic: Path,
) -> None:
    at = FIRING - timedelta(hours=1)  # an hour before the recurring firing
    newsletter = _open(clinic, at - timedelta(days=3))
    OneOffStore(newsletter.sessions).schedule(SAMPLE_SLUG, at, newsletter.clock())
    newsletter.close()
    watch(str(clinic), now=at - timedelta(hours=25))
    assert owner_mail(clinic) == []
    watch(str(clinic), now=at - timedelta(hours=23))
    watch(str(clinic), now=at - timedelta(hours=22))  # once per one-off (and per firing)
    mail = owner_mail(clinic)
    assert len(mail) == 2  # the one-off's and the recurring firing's
    [heads_up] = [m for m in mail if "one-off send" in text_of(m)]
    body = text_of(heads_up)
    assert SAMPLE_SLUG in body and "to 5 subscriber(s)" in body and heads_up["To"] == OWNER
    link = re.search(r"Hold this send: (\S+)", body)
    assert link is not None
    path = link.group(1).removeprefix(BASE)
    newsletter = _open(clinic, at - timedelta(hours=20))
    with TestClient(create_app(newsletter), base_url=BASE) as client:
        page = client.get(path)
        assert page.status_code == 200 and "Hold this send" in page.text
        assert HoldStore(newsletter.sessions).in_force() == []  # GET never holds
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token is not None
        assert client.post(path, data={"csrf_token": token.group(1)}).status_code == 200
    newsletter.close()

    assert send_scheduled_due(str(clinic), now=at + timedelta(seconds=2)) == []
    assert send_scheduled_due(str(clinic), now=at + timedelta(seconds=9)) == []
    assert not (clinic.parent / "outbox" / SAMPLE_SLUG).exists()
    listing = json.loads(cli(clinic, "schedule", "list", "--json").stdout)
    [held] = listing["held_firings"]
    assert (held["slug"], held["one_off"], held["at"]) == (SAMPLE_SLUG, True, at.isoformat())
    [one] = listing["one_offs"]
    assert one["status"] == "pending"  # held, not fired: the owner decides
    assert "held by the owner" in cli(clinic, "queue").stdout

    # A one-off's hold holds that one-off only: the recurring firing an hour later sends.
    report = send_due(str(clinic), now=FIRING + timedelta(seconds=2))
    assert report is not None and report.counts.slug != SAMPLE_SLUG and report.complete

    resumed = cli(clinic, "schedule", "resume")
    assert "1 held firing(s) released" in resumed.stdout
    # Released within the catch-up grace, it goes out now.
    assert send_scheduled_due(str(clinic), now=FIRING + timedelta(hours=1)) == [SAMPLE_SLUG]
    newsletter = _open(clinic, FIRING + timedelta(hours=1))
    [fired] = OneOffStore(newsletter.sessions).all()
    newsletter.close()
    assert fired.status is ScheduledSendStatus.FIRED
    assert len(receipts(clinic)) == 2
