"""A batch meets a fault between its steps: rows never handed over are never left in doubt.

The transport here is a scripted one (the outermost seam: what a server
answered); the ledger is the real one, on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import select, update

from pipeline.newsletter import Newsletter
from pipeline.sending.batch import BatchSender, CampaignMessages
from pipeline.sending.runner import DEFAULT_LEASE
from pipeline.sending.transports.base import (
    CampaignMessage,
    DeliveryResult,
    FailureKind,
    Outcome,
    Recipient,
    Transport,
)
from pipeline.store.ledger import Ledger, OutcomeGroup
from pipeline.store.models import Delivery, DeliveryStatus
from tests.helpers import SAMPLE_SLUG
from tests.sending.ledger_claims.helpers import _clock, rows_written


class Scripted(Transport):
    """Answers each batch with ``answer(recipients)``, after ``meanwhile()`` on the first."""

    name = "scripted"

    def __init__(
        self,
        answer: Callable[[Sequence[Recipient]], list[DeliveryResult]],
        meanwhile: Callable[[], None] = lambda: None,
    ) -> None:
        super().__init__()
        self.answer, self.meanwhile = answer, meanwhile
        self.batches: list[list[int | None]] = []

    def send_batch(
        self, message: CampaignMessage, recipients: Sequence[Recipient]
    ) -> list[DeliveryResult]:
        self.batches.append([r.delivery_id for r in recipients])
        if len(self.batches) == 1:
            self.meanwhile()
        return self.answer(recipients)


class BouncesFail:
    """The ledger, but marking bounced subscribers fails (say, the database went away)."""

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ledger, name)

    def mark_bounced(self, subscriber_ids: Sequence[int], now: datetime) -> int:
        raise RuntimeError("database is locked")


def test_deferred_rows_go_back_even_when_marking_a_bounce_fails(newsletter: Newsletter) -> None:
    ledger, clock = newsletter.ledger, _clock(newsletter)
    campaign, _ = newsletter.plan(SAMPLE_SLUG)
    claim = ledger.claim(campaign.id, 5, clock(), "sender-a")

    def answer(recipients: Sequence[Recipient]) -> list[DeliveryResult]:
        first, *rest = recipients  # one mailbox gone, the server busy for the rest
        gone = DeliveryResult(
            first,
            Outcome.FAILED,
            error="550 5.1.1 no such user",
            failure_kind=FailureKind.RECIPIENT,
            address_gone=True,
        )
        return [gone] + [DeliveryResult(r, Outcome.DEFERRED, error="451 later") for r in rest]

    sender = BatchSender(BouncesFail(ledger), newsletter.links(), clock, DEFAULT_LEASE)  # type: ignore[arg-type]
    messages = CampaignMessages.of(campaign, newsletter.sender(), ledger.catch_up_issue)
    with pytest.raises(RuntimeError, match="database is locked"):
        sender.send_claim(Scripted(answer), messages, claim, lambda: False)
    counts = ledger.counts(campaign)
    assert (counts.failed, counts.pending, counts.sending) == (1, 4, 0)


def test_a_split_claim_whose_lease_went_does_not_send_its_later_parts(
    newsletter: Newsletter,
) -> None:
    """While part 1 is out, this sender's rows expire, the owner resends them, and
    sender B sends them all: part 2 must not also go from this sender."""
    ledger, clock = newsletter.ledger, _clock(newsletter)
    campaign, _ = newsletter.plan(SAMPLE_SLUG)
    rows_written(newsletter, campaign.id)
    with newsletter.sessions.begin() as session:
        ids = list(session.scalars(select(Delivery.id).order_by(Delivery.id)))
        session.execute(
            update(Delivery).where(Delivery.id.in_(ids[3:])).values(catch_up_at=clock())
        )
    claim = ledger.claim(campaign.id, 5, clock(), "sender-a")
    assert [len(part.rows) for part in claim.by_issue()] == [3, 2]
    sent_by_b: list[int] = []

    def b_takes_over() -> None:
        clock.advance(minutes=5)
        ledger.expire_stale(campaign.id, clock(), DEFAULT_LEASE, lambda owner: owner == "sender-a")
        ledger.requeue_uncertain(campaign.id)
        b = ledger.claim(campaign.id, 5, clock(), "sender-b")
        sent_by_b.extend(r.delivery_id for r in b.rows)
        group = OutcomeGroup(DeliveryStatus.SENT, tuple(sent_by_b), "<b@x>")
        ledger.record(b, [group], clock())

    def sent(recipients: Sequence[Recipient]) -> list[DeliveryResult]:
        return [DeliveryResult(r, Outcome.SENT, message_id="<a@x>") for r in recipients]

    transport = Scripted(sent, meanwhile=b_takes_over)
    sender = BatchSender(ledger, newsletter.links(), clock, DEFAULT_LEASE)
    messages = CampaignMessages.of(campaign, newsletter.sender(), ledger.catch_up_issue)
    assert sender.send_claim(transport, messages, claim, lambda: False) is None
    assert transport.batches == [ids[:3]]  # part 2 was left to B, who sent it
    assert sorted(sent_by_b) == ids
    with newsletter.sessions() as session:
        rows = session.execute(select(Delivery.status, Delivery.message_id)).all()
    assert set(rows) == {(DeliveryStatus.SENT, "<b@x>")}
