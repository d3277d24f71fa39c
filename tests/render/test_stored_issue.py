"""The stored issue is one record from planning to the transport.

``render_issue`` makes a :class:`RenderedIssue`; the ledger stores it when the
campaign is planned and hands it back as ``CampaignRecord.issue``; the runner
gives that same record to the transport; what the transport writes (here, the
outbox's ``.eml`` files) is that record personalized, field for field. Run on
SQLite and PostgreSQL: the database round trip must give back every field.
"""

from __future__ import annotations

import email
from collections.abc import Sequence
from email import policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import select

from pipeline.config import load_settings
from pipeline.newsletter import Newsletter
from pipeline.render import Personalizer, RenderedIssue
from pipeline.sending.runner import CampaignRunner
from pipeline.sending.transports import CampaignMessage, DeliveryResult, Recipient
from pipeline.sending.transports.outbox import OutboxTransport
from pipeline.store.ledger import Ledger
from pipeline.store.models import Subscriber
from pipeline.subscribers import import_csv
from tests.helpers import SAMPLE_SLUG, FixedClock, copy_sample_folder


@pytest.fixture
def newsletter(tmp_path: Path, database_url: str) -> Newsletter:
    config = copy_sample_folder(tmp_path / "clinic")
    settings = load_settings(
        config,
        environ={"NEWSLETTER_SECRET_KEY": "test-secret", "NEWSLETTER_DATABASE_URL": database_url},
    )
    nl = Newsletter(settings, clock=FixedClock())
    import_csv(nl.sessions, tmp_path / "clinic" / "sample-subscribers.csv")
    return nl


class CapturingOutbox(OutboxTransport):
    """The real outbox transport, noting which issue each batch was handed."""

    def __init__(self, directory: Path, newsletter: Newsletter, seen: list[RenderedIssue]) -> None:
        super().__init__(directory, newsletter.clock)
        self.seen = seen

    def send_batch(
        self, message: CampaignMessage, recipients: Sequence[Recipient]
    ) -> list[DeliveryResult]:
        self.seen.append(message.issue)
        return super().send_batch(message, recipients)


def _text(message: EmailMessage, kind: str) -> str:
    part = message.get_body((kind,))
    assert part is not None
    content = part.get_content()
    assert isinstance(content, str)
    return content.replace("\r\n", "\n")


def test_the_planned_issue_is_the_record_the_transport_sends(newsletter: Newsletter) -> None:
    issue = newsletter.render(SAMPLE_SLUG)
    assert issue.preheader and issue.html and issue.text  # every field is worth carrying

    record, created = newsletter.ledger.plan(issue, "outbox", newsletter.clock())
    assert created
    assert record.issue is issue and record.slug == issue.slug == SAMPLE_SLUG

    # What a worker (another process, another session) reads back: every field as planned.
    stored = Ledger(newsletter.sessions).get_campaign(SAMPLE_SLUG)
    assert stored is not None
    assert stored.issue == issue
    assert [campaign.issue for campaign in newsletter.ledger.open_campaigns()] == [issue]

    seen: list[RenderedIssue] = []
    outbox = newsletter.settings.outbox_path
    runner = CampaignRunner(
        newsletter.ledger,
        lambda: CapturingOutbox(outbox, newsletter, seen),
        sender=newsletter.sender(),
        links=newsletter.links(),
        batch_size=2,
        clock=newsletter.clock,
    )
    result = runner.run(record)
    assert result.counts.sent == result.counts.planned == 5
    assert len(seen) == 3 and all(handed is issue for handed in seen)

    # What went out is that record personalized: subject, text and HTML (preheader inside).
    with newsletter.sessions() as session:
        rows = session.execute(select(Subscriber.email, Subscriber.first_name)).all()
    names = {address: first_name for address, first_name in rows}
    fallback = newsletter.settings.email.first_name_fallback
    merge = Personalizer(issue)
    files = sorted((outbox / SAMPLE_SLUG).glob("*.eml"))
    assert len(files) == 5
    for path in files:
        message = email.message_from_bytes(path.read_bytes(), policy=policy.default)
        assert isinstance(message, EmailMessage)
        to = str(message["To"])
        values = {
            "first_name": (names[to] or "").strip() or fallback,
            "unsubscribe_url": str(message["List-Unsubscribe"]).strip("<>"),
        }
        assert str(message["Subject"]) == issue.subject
        assert _text(message, "plain").rstrip("\n") == merge.text(values).rstrip("\n")
        assert _text(message, "html").rstrip("\n") == merge.html(values).rstrip("\n")
        assert issue.preheader in _text(message, "html")
