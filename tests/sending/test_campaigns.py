"""Campaigns end to end on SQLite + outbox: ledger rows, resume, suppression."""

from __future__ import annotations

import email
from email import policy
from pathlib import Path

import pytest
from sqlalchemy import select, update

from pipeline.config import load_settings
from pipeline.errors import NotFoundError, PipelineError
from pipeline.newsletter import Newsletter
from pipeline.sending.transports import Outcome, Transport
from pipeline.sending.transports.base import CampaignMessage, DeliveryResult, Recipient
from pipeline.store.models import Delivery, DeliveryStatus, InFlightClaim
from pipeline.subscribers import add_subscriber, import_csv, remove_subscriber
from tests.helpers import SAMPLE_SLUG, FixedClock, copy_sample_folder


@pytest.fixture
def newsletter(tmp_path: Path, database_url: str) -> Newsletter:
    """The sample folder on SQLite, then on PostgreSQL: the same code runs on both."""
    config = copy_sample_folder(tmp_path / "clinic")
    settings = load_settings(
        config,
        environ={"NEWSLETTER_SECRET_KEY": "test-secret", "NEWSLETTER_DATABASE_URL": database_url},
    )
    nl = Newsletter(settings, clock=FixedClock())
    import_csv(nl.sessions, tmp_path / "clinic" / "sample-subscribers.csv")
    return nl


def _outbox(nl: Newsletter, slug: str = SAMPLE_SLUG) -> list[Path]:
    return sorted((nl.settings.outbox_path / slug).glob("*.eml"))


def test_send_writes_one_eml_per_subscriber_and_repeat_sends_nothing(
    newsletter: Newsletter,
) -> None:
    report = newsletter.send(SAMPLE_SLUG)
    assert report.created and report.complete
    assert report.counts.planned == report.counts.sent == 5
    files = _outbox(newsletter)
    assert len(files) == 5
    stamps = [f.stat().st_mtime_ns for f in files]

    again = newsletter.send(SAMPLE_SLUG)
    assert not again.created
    assert again.counts.sent == 5 and again.counts.planned == 5
    assert [f.stat().st_mtime_ns for f in _outbox(newsletter)] == stamps


def test_each_email_is_personal_and_carries_the_contract(newsletter: Newsletter) -> None:
    newsletter.send(SAMPLE_SLUG)
    seen_tokens = set()
    for path in _outbox(newsletter):
        msg = email.message_from_bytes(path.read_bytes(), policy=policy.default)
        to = str(msg["To"])
        html = msg.get_body(("html",)).get_content()  # type: ignore[union-attr]
        text = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        unsubscribe = str(msg["List-Unsubscribe"]).strip("<>")
        assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert unsubscribe in html and unsubscribe in text
        seen_tokens.add(unsubscribe)
        assert "%%" not in html and "%%" not in text
        assert "/archive/massage-and-mental-health" in html
        assert "/archive/massage-guns-are-they-worth-it" in text
        if to == "alex.taylor@example.com":  # no first name in the CSV
            assert "Hi there," in text
        if to == "maria.garcia@example.net":
            assert "Hi María," in text
    assert len(seen_tokens) == 5


def test_someone_who_leaves_mid_campaign_is_suppressed(newsletter: Newsletter) -> None:
    from pipeline.sending.transports.outbox import OutboxTransport

    class LeavesDuringFirstBatch(OutboxTransport):
        """Writes to the outbox; while the first batch is out, Jordan unsubscribes."""

        batches = 0

        def send_batch(
            self, message: CampaignMessage, recipients: list[Recipient]
        ) -> list[DeliveryResult]:
            self.batches += 1
            if self.batches == 1:
                assert "jordan.lee@example.org" not in {r.email for r in recipients}
                remove_subscriber(newsletter.sessions, "jordan.lee@example.org")
            return super().send_batch(message, recipients)

    from pipeline.sending import transports

    transports.TRANSPORTS["leaves"] = lambda env: LeavesDuringFirstBatch(
        env.settings.outbox_path, env.clock
    )
    sending = newsletter.settings.sending.model_copy(
        update={"batch_size": 2, "transport": "leaves"}
    )
    newsletter.settings = newsletter.settings.model_copy(update={"sending": sending})
    try:
        report = newsletter.send(SAMPLE_SLUG)
    finally:
        del transports.TRANSPORTS["leaves"]
    assert report.counts.suppressed == 1 and report.counts.sent == 4
    assert report.complete
    names = [p.name for p in _outbox(newsletter)]
    assert not any("jordan" in name for name in names)


def test_include_new_adds_only_those_who_joined_since(newsletter: Newsletter) -> None:
    plan = newsletter.send(SAMPLE_SLUG, dry_run=True)
    assert plan.counts.pending == 5 and plan.dry_run
    assert newsletter.ledger.get_campaign(SAMPLE_SLUG) is None  # a dry run writes nothing
    newsletter.send(SAMPLE_SLUG)
    add_subscriber(newsletter.sessions, "late@example.com")
    assert newsletter.send(SAMPLE_SLUG).counts.planned == 5  # not without --include-new
    resumed = newsletter.send(SAMPLE_SLUG, include_new=True)
    assert resumed.added == 1
    assert resumed.counts.planned == 6 and resumed.counts.sent == 6
    assert len(_outbox(newsletter)) == 6


def test_pending_rows_of_people_who_left_become_suppressed(newsletter: Newsletter) -> None:
    _campaign, created = newsletter.plan(SAMPLE_SLUG)
    assert created
    remove_subscriber(newsletter.sessions, "sam.nguyen@example.com")
    report = newsletter.send(SAMPLE_SLUG)
    assert report.counts.suppressed == 1 and report.counts.sent == 4
    assert report.complete
    assert len(_outbox(newsletter)) == 4


def test_rows_left_in_flight_by_a_crash_become_uncertain_not_resent(
    newsletter: Newsletter,
) -> None:
    clock = newsletter.clock
    assert isinstance(clock, FixedClock)
    report = newsletter.send(SAMPLE_SLUG)
    campaign = newsletter.ledger.get_campaign(SAMPLE_SLUG)
    assert campaign is not None
    # Simulate a sender killed mid-batch: two rows claimed, never recorded
    # (and, as a claim writes them in the same transaction, its claim listed).
    with newsletter.sessions.begin() as session:
        session.add(
            InFlightClaim(
                token="claim-of-a-dead-sender",
                campaign_id=campaign.id,
                claimed_by="another-host:4242",
                claimed_at=clock(),
            )
        )
        rows = session.scalars(select(Delivery.id).where(Delivery.campaign_id == campaign.id))
        ids = list(rows)[:2]
        session.execute(
            update(Delivery)
            .where(Delivery.id.in_(ids))
            .values(
                status=DeliveryStatus.SENDING,
                claim_token="claim-of-a-dead-sender",
                claimed_by="another-host:4242",
                claimed_at=clock(),
            )
        )
    clock.advance(minutes=11)
    after = newsletter.send(SAMPLE_SLUG)
    assert after.counts.uncertain == 2 and after.counts.sent == report.counts.sent - 2
    assert not after.complete
    assert after.counts.planned == 5


def test_failed_recipient_does_not_stop_the_batch(newsletter: Newsletter) -> None:
    class FailOne(Transport):
        name = "fail-one"

        def send_batch(
            self, message: CampaignMessage, recipients: list[Recipient]
        ) -> list[DeliveryResult]:
            return [
                DeliveryResult(r, Outcome.FAILED, error="mailbox full")
                if r.email.startswith("priya")
                else DeliveryResult(r, Outcome.SENT, message_id="<x@y>")
                for r in recipients
            ]

    from pipeline.sending import transports

    transports.TRANSPORTS["fail-one"] = lambda env: FailOne()
    try:
        newsletter.settings = newsletter.settings.model_copy(
            update={
                "sending": newsletter.settings.sending.model_copy(update={"transport": "fail-one"})
            }
        )
        report = newsletter.send(SAMPLE_SLUG)
    finally:
        del transports.TRANSPORTS["fail-one"]
    assert report.counts.failed == 1 and report.counts.sent == 4
    assert not report.complete


def test_unknown_slug_and_drafts(newsletter: Newsletter, tmp_path: Path) -> None:
    with pytest.raises(NotFoundError):
        newsletter.send("no-such-article")
    draft = newsletter.settings.articles_path / "draft-one.md"
    draft.write_text("---\ntitle: Not yet\nstatus: draft\n---\nBody\n", encoding="utf-8")
    with pytest.raises(PipelineError, match="draft"):
        newsletter.send("draft-one")


def test_next_due_follows_the_series(newsletter: Newsletter) -> None:
    assert newsletter.resolve_slug(None) == "massage-and-mental-health"
    newsletter.send(None)
    assert newsletter.resolve_slug(None) == SAMPLE_SLUG


def test_a_claim_takes_at_most_the_batch_size_in_signup_order(newsletter: Newsletter) -> None:
    campaign, _ = newsletter.plan(SAMPLE_SLUG)
    first = newsletter.ledger.claim(campaign.id, 2, newsletter.clock(), "test:1")
    second = newsletter.ledger.claim(campaign.id, 2, newsletter.clock(), "test:2")
    assert [r.email for r in first.rows] == ["sam.nguyen@example.com", "priya.sharma@example.com"]
    assert len(second.rows) == 2
    assert not {r.delivery_id for r in first.rows} & {r.delivery_id for r in second.rows}
    counts = newsletter.ledger.counts(campaign)
    assert (counts.sending, counts.pending) == (4, 1)


def test_a_claim_looks_past_its_last_row_then_back_from_the_start(
    newsletter: Newsletter,
) -> None:
    # Five rows, ids in sign-up order. A sender resumes after its last row;
    # a row given back behind it is still found once nothing lies ahead.
    campaign, _ = newsletter.plan(SAMPLE_SLUG)
    ledger, now = newsletter.ledger, newsletter.clock()
    first = ledger.claim(campaign.id, 2, now, "test:1")
    ids = [r.delivery_id for r in first.rows]
    ledger.release(first, [ids[0]])
    second = ledger.claim(campaign.id, 2, now, "test:1", after=ids[-1])
    assert all(r.delivery_id > ids[-1] for r in second.rows) and len(second.rows) == 2
    last = ledger.claim(campaign.id, 2, now, "test:1", after=second.rows[-1].delivery_id)
    assert len(last.rows) == 1 and last.rows[0].delivery_id > second.rows[-1].delivery_id
    back = ledger.claim(campaign.id, 2, now, "test:1", after=last.rows[-1].delivery_id)
    assert [r.delivery_id for r in back.rows] == [ids[0]]
    assert ledger.claim(campaign.id, 2, now, "test:1", after=ids[0]).rows == []
    assert ledger.counts(campaign).sending == 5
