"""The welcome email: once per person, ever, through the ledger (SQLite and PostgreSQL)."""

from __future__ import annotations

import email
import subprocess
from email import policy
from pathlib import Path

import pytest
from sqlalchemy import select

from pipeline.config import load_settings
from pipeline.content.reserved import WELCOME_SLUG
from pipeline.newsletter import Newsletter
from pipeline.sending import transports
from pipeline.sending.transports.base import CampaignMessage, DeliveryResult, Recipient
from pipeline.sending.transports.outbox import OutboxTransport
from pipeline.sending.welcome import prepare_welcome, send_welcomes
from pipeline.store import welcome as stored
from pipeline.store.models import Delivery, Subscriber
from pipeline.subscribers import add_subscriber, import_csv
from tests.cli.test_cli import run
from tests.helpers import SAMPLE_SLUG, FixedClock, copy_sample_folder


def _open(tmp_path: Path, database_url: str, *, welcome: bool = True) -> Newsletter:
    config = copy_sample_folder(tmp_path / "clinic", welcome=welcome)
    settings = load_settings(
        config,
        environ={"NEWSLETTER_SECRET_KEY": "welcome", "NEWSLETTER_DATABASE_URL": database_url},
    )
    return Newsletter(settings, clock=FixedClock())


@pytest.fixture
def newsletter(tmp_path: Path, database_url: str) -> Newsletter:
    return _open(tmp_path, database_url)


def _welcomed(nl: Newsletter) -> list[str]:
    """Every address a welcome email was written to, once per file (duplicates kept)."""
    folder = nl.settings.outbox_path / WELCOME_SLUG
    found = []
    for path in sorted(folder.glob("*.eml")):
        msg = email.message_from_bytes(path.read_bytes(), policy=policy.default)
        found.append(str(msg["To"]))
    return sorted(found)


def _import(nl: Newsletter, *, welcome: int | None) -> None:
    csv = nl.settings.articles_path.parent / "sample-subscribers.csv"
    assert not import_csv(nl.sessions, csv, welcome=welcome).problems


def _sample_addresses(nl: Newsletter) -> list[str]:
    with nl.sessions() as session:
        return sorted(session.scalars(select(Subscriber.email)))


def test_each_new_subscriber_is_welcomed_once_and_never_again(newsletter: Newsletter) -> None:
    nl = newsletter
    _import(nl, welcome=prepare_welcome(nl))
    report = send_welcomes(nl)
    assert report is not None and report.complete and report.counts.sent == 5
    everyone = _sample_addresses(nl)
    assert _welcomed(nl) == everyone

    # A re-import, `subscribers add` of someone already there, a second
    # activation of the same people and a rerun: nothing more is sent.
    _import(nl, welcome=prepare_welcome(nl))
    add_subscriber(nl.sessions, everyone[0], welcome=prepare_welcome(nl))
    welcome_id = prepare_welcome(nl)
    assert welcome_id is not None
    with nl.sessions.begin() as session:
        ids = list(session.scalars(select(Subscriber.id)))
        assert stored.enrol_ids(session, welcome_id, ids) == 0
    assert send_welcomes(nl) is None
    assert _welcomed(nl) == everyone

    # Someone new: welcomed at once, alone.
    add_subscriber(nl.sessions, "new.reader@example.com", welcome=prepare_welcome(nl))
    again = send_welcomes(nl)
    assert again is not None and again.counts.sent == 6 and again.counts.planned == 6
    assert _welcomed(nl) == sorted([*everyone, "new.reader@example.com"])


def test_people_there_before_the_welcome_existed_are_not_welcomed(
    newsletter: Newsletter,
) -> None:
    _import(newsletter, welcome=None)  # e.g. imported before welcome.mjml was written
    add_subscriber(newsletter.sessions, "late@example.com", welcome=prepare_welcome(newsletter))
    send_welcomes(newsletter)
    assert _welcomed(newsletter) == ["late@example.com"]


def test_no_welcome_templates_no_welcome_campaign(tmp_path: Path, database_url: str) -> None:
    nl = _open(tmp_path, database_url, welcome=False)
    assert prepare_welcome(nl) is None
    _import(nl, welcome=prepare_welcome(nl))
    assert send_welcomes(nl) is None
    assert nl.ledger.get_campaign(WELCOME_SLUG) is None


class _CrashesOnSecondBatch(OutboxTransport):
    """Writes the first batch, then dies half-way through the second (after one email)."""

    batches = 0

    def send_batch(
        self, message: CampaignMessage, recipients: list[Recipient]
    ) -> list[DeliveryResult]:
        type(self).batches += 1
        if type(self).batches == 2:
            super().send_batch(message, recipients[:1])
            raise RuntimeError("process died mid-batch")
        return super().send_batch(message, recipients)


def test_a_crash_mid_batch_leaves_welcomes_uncertain_never_resent(
    tmp_path: Path, database_url: str
) -> None:
    nl = _open(tmp_path, database_url)
    clock = nl.clock
    assert isinstance(clock, FixedClock)
    _import(nl, welcome=prepare_welcome(nl))
    transports.TRANSPORTS["crashes"] = lambda env: _CrashesOnSecondBatch(
        env.settings.outbox_path, env.clock
    )
    sending = nl.settings.sending.model_copy(
        update={"batch_size": 2, "transport": "crashes", "concurrency": 1, "processes": 1}
    )
    outbox = nl.settings.sending
    nl.settings = nl.settings.model_copy(update={"sending": sending})
    _CrashesOnSecondBatch.batches = 0
    try:
        with pytest.raises(RuntimeError, match="mid-batch"):
            send_welcomes(nl)
    finally:
        del transports.TRANSPORTS["crashes"]
    nl.settings = nl.settings.model_copy(update={"sending": outbox})
    clock.advance(minutes=10)  # the dead batch's lease runs out

    report = send_welcomes(nl)
    assert report is not None
    c = report.counts
    assert (c.planned, c.sent, c.uncertain, c.pending, c.sending) == (5, 3, 2, 0, 0)
    assert not report.complete  # the two in doubt are reported, not resent
    assert send_welcomes(nl) is None  # nothing pending: a rerun sends nothing
    welcomed = _welcomed(nl)
    # Batch 1 (2), the crashed batch's first email (1), the last row (1): each address once.
    assert len(welcomed) == len(set(welcomed)) == 4
    with nl.sessions() as session:
        uncertain = session.scalar(
            select(Delivery.id).where(Delivery.status == "uncertain").limit(1)
        )
    assert uncertain is not None


def test_cli_add_and_import_welcome_at_once_and_demo_output_is_unchanged(
    tmp_path: Path,
) -> None:
    copy_sample_folder(tmp_path / "clinic", welcome=True)
    folder = tmp_path / "clinic"
    demo = run(folder, "demo", "--no-serve")
    assert demo.returncode == 0, demo.stderr
    assert "welcome" not in demo.stdout.lower()
    assert len(list((folder / "outbox" / SAMPLE_SLUG).glob("*.eml"))) == 5
    assert len(list((folder / "outbox" / WELCOME_SLUG).glob("*.eml"))) == 5
    assert "nothing sent twice" in run(folder, "demo", "--no-serve").stdout
    assert len(list((folder / "outbox" / WELCOME_SLUG).glob("*.eml"))) == 5

    added = run(folder, "subscribers", "add", "pat@example.com")
    assert added.returncode == 0, added.stderr
    assert "welcome email: 6 sent in all" in added.stdout
    assert len(list((folder / "outbox" / WELCOME_SLUG).glob("*.eml"))) == 6
    again = run(folder, "subscribers", "add", "pat@example.com")
    assert again.returncode == 0 and "welcome" not in again.stdout
    reimport = run(folder, "subscribers", "import", "sample-subscribers.csv")
    assert reimport.returncode == 0 and "welcome" not in reimport.stdout
    assert len(list((folder / "outbox" / WELCOME_SLUG).glob("*.eml"))) == 6


def test_check_refuses_an_article_slug_welcome(tmp_path: Path) -> None:
    copy_sample_folder(tmp_path / "clinic")
    folder = tmp_path / "clinic"
    (folder / "articles" / "welcome.md").write_text(
        '---\ntitle: "Welcome"\n---\nHello.\n', encoding="utf-8"
    )
    checked: subprocess.CompletedProcess[str] = run(folder, "check")
    assert checked.returncode == 1
    assert "welcome.md:1: slug 'welcome' is reserved" in checked.stdout + checked.stderr
