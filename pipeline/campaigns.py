"""Run a campaign in batches through a transport, keeping the ledger true.

Like listmonk's manager, the runner depends on two narrow interfaces: a
:class:`CampaignStore` (the ledger) and a :class:`~pipeline.transports.Transport`.
Each batch is claimed (pending -> sending) before anything is handed over and
recorded (sending -> sent | failed) right after, so the ledger is the
checkpoint: a rerun carries on from it and never sends a row twice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from .message import Sender
from .render import RenderedIssue
from .store.ledger import (
    CampaignCounts,
    CampaignRecord,
    ClaimedRow,
    NewIssue,
    RowOutcome,
)
from .store.models import DeliveryStatus
from .tokens import TokenSigner
from .transports import CampaignMessage, Outcome, Recipient, Transport

#: How long a claimed row may stay in flight before it is presumed abandoned.
DEFAULT_LEASE = timedelta(minutes=10)


class CampaignStore(Protocol):
    """What the runner needs from the ledger."""

    def get_campaign(self, slug: str) -> CampaignRecord | None: ...
    def plan(self, issue: NewIssue, now: datetime) -> tuple[CampaignRecord, bool]: ...
    def add_new_subscribers(self, campaign_id: int) -> int: ...
    def mark_running(self, campaign_id: int, now: datetime) -> None: ...
    def suppress_departed(self, campaign_id: int) -> int: ...
    def claim(self, campaign_id: int, size: int, now: datetime) -> list[ClaimedRow]: ...
    def record(self, outcomes: Iterable[RowOutcome], now: datetime) -> None: ...
    def release(self, delivery_ids: Sequence[int]) -> None: ...
    def expire_stale(self, campaign_id: int, now: datetime, lease: timedelta) -> int: ...
    def counts(self, campaign: CampaignRecord) -> CampaignCounts: ...
    def finish_if_done(self, campaign_id: int, now: datetime) -> bool: ...


@dataclass(frozen=True)
class RecipientLinks:
    """Builds each recipient's personal values (first name, unsubscribe link)."""

    signer: TokenSigner
    base_url: str
    first_name_fallback: str

    def recipient(self, row: ClaimedRow) -> Recipient:
        """The transport's view of one claimed ledger row."""
        token = self.signer.issue("unsubscribe", row.subscriber_id, row.email)
        return Recipient(
            email=row.email,
            first_name=(row.first_name or "").strip() or self.first_name_fallback,
            unsubscribe_url=f"{self.base_url}/unsubscribe/{token}",
            delivery_id=row.delivery_id,
            subscriber_id=row.subscriber_id,
        )


_OUTCOME_STATUS = {Outcome.SENT: DeliveryStatus.SENT, Outcome.FAILED: DeliveryStatus.FAILED}


class CampaignRunner:
    """Sends the pending rows of one campaign, batch by batch."""

    def __init__(
        self,
        store: CampaignStore,
        transport: Transport,
        *,
        sender: Sender,
        links: RecipientLinks,
        batch_size: int,
        clock: Callable[[], datetime],
        lease: timedelta = DEFAULT_LEASE,
    ) -> None:
        self._store = store
        self._transport = transport
        self._sender = sender
        self._links = links
        self._batch_size = batch_size
        self._clock = clock
        self._lease = lease

    def run(
        self,
        campaign: CampaignRecord,
        progress: Callable[[CampaignCounts], None] | None = None,
    ) -> CampaignCounts:
        """Send every pending row; return the final counts."""
        store = self._store
        store.expire_stale(campaign.id, self._clock(), self._lease)
        store.mark_running(campaign.id, self._clock())
        message = CampaignMessage(
            campaign=campaign.slug,
            issue=RenderedIssue(
                slug=campaign.slug,
                subject=campaign.subject,
                preheader=campaign.preheader,
                html=campaign.html,
                text=campaign.text,
            ),
            sender=self._sender,
        )
        with self._transport as transport:
            while True:
                # Someone who left since the last batch is skipped, not mailed.
                store.suppress_departed(campaign.id)
                rows = store.claim(campaign.id, self._batch_size, self._clock())
                if not rows:
                    break
                self._send_batch(transport, message, rows)
                if progress is not None:
                    progress(store.counts(campaign))
        store.finish_if_done(campaign.id, self._clock())
        return store.counts(campaign)

    def _send_batch(
        self, transport: Transport, message: CampaignMessage, rows: list[ClaimedRow]
    ) -> None:
        recipients = [self._links.recipient(row) for row in rows]
        # If this raises, whether any of these left is unknown: the rows stay in
        # flight, where the lease turns them uncertain instead of resending them.
        results = transport.send_batch(message, recipients)
        outcomes = [
            RowOutcome(
                delivery_id=result.recipient.delivery_id or 0,
                status=_OUTCOME_STATUS[result.outcome],
                message_id=result.message_id,
                error=result.error,
            )
            for result in results
        ]
        self._store.record(outcomes, self._clock())
