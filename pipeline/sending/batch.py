"""One claimed batch: hand it to the transport under a heartbeat, then record what came back.

The runner's lanes claim batches; this module does the rest of a batch's life.
Results are grouped by outcome so that the ledger writes a typical SendGrid
batch in one UPDATE; rows the transport could not take go back to pending;
subscribers whose mailbox does not exist leave the list once their rows are
recorded. What a batch needs from the ledger is :class:`BatchLedger`.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from pipeline.render import RenderedIssue
from pipeline.render.message import Sender
from pipeline.sending.recipients import RecipientLinks
from pipeline.sending.senders import Heartbeat
from pipeline.sending.transports import (
    CampaignMessage,
    DeliveryResult,
    Outcome,
    Transport,
    TransportStopError,
)
from pipeline.store.ledger import CampaignRecord, Claim, OutcomeGroup
from pipeline.store.models import DeliveryStatus

# The runner's logger: its lines read the same as before the batch had a module of its own.
log = logging.getLogger("pipeline.sending.runner")

_FINAL_STATUS = {
    Outcome.SENT: DeliveryStatus.SENT,
    Outcome.FAILED: DeliveryStatus.FAILED,
    Outcome.UNCERTAIN: DeliveryStatus.UNCERTAIN,
    # Left (unsubscribed, bounced, erased) while the batch was out: never sent.
    Outcome.SUPPRESSED: DeliveryStatus.SUPPRESSED,
}


class BatchLedger(Protocol):
    """What one batch needs from the ledger."""

    def renew(self, claim: Claim, now: datetime) -> bool: ...
    def record(self, claim: Claim, groups: Sequence[OutcomeGroup], now: datetime) -> None: ...
    def release(self, claim: Claim, delivery_ids: Sequence[int] | None = None) -> None: ...
    def mark_bounced(self, subscriber_ids: Sequence[int], now: datetime) -> int: ...


@dataclass(frozen=True)
class BatchStop:
    """Why the run should stop after this batch, and whether only a person can fix it."""

    reason: str
    #: The provider refused the credentials or the sender: retrying cannot help.
    needs_owner: bool = False


class CampaignMessages:
    """A run's messages: the campaign's own, and each catch-up slot's, loaded on first use.

    A catch-up row goes out with the issue stored for its slot (the series
    navigation from the reader's side: :mod:`pipeline.store.catch_up_issues`).
    The daily pass stores it before planning the rows, so it is always there;
    were it not (a database edited by hand), the row gets the live issue,
    which is still the right article, and a warning says so.
    """

    def __init__(
        self, live: CampaignMessage, load: Callable[[datetime], RenderedIssue | None]
    ) -> None:
        self.live = live
        self._load = load
        self._lock = threading.Lock()
        self._by_slot: dict[datetime, CampaignMessage] = {}

    @classmethod
    def of(
        cls,
        campaign: CampaignRecord,
        sender: Sender,
        load: Callable[[int, datetime], RenderedIssue | None],
    ) -> CampaignMessages:
        """A campaign's messages; ``load(campaign id, slot)`` reads a catch-up slot's issue."""
        live = CampaignMessage(campaign=campaign.slug, issue=campaign.issue, sender=sender)
        return cls(live, lambda slot: load(campaign.id, slot))

    def for_slot(self, slot: datetime | None) -> CampaignMessage:
        """The message for rows of this catch-up slot (None: live rows)."""
        if slot is None:
            return self.live
        with self._lock:
            message = self._by_slot.get(slot)
            if message is None:
                issue = self._load(slot)
                if issue is None:
                    log.warning(
                        "%s: no catch-up issue stored for %s; sending the live one",
                        self.live.campaign,
                        slot.isoformat(),
                    )
                    issue = self.live.issue
                message = dataclasses.replace(self.live, issue=issue)
                self._by_slot[slot] = message
            return message


@dataclass(frozen=True)
class BatchSender:
    """Sends claimed batches of one run and records them in the ledger."""

    store: BatchLedger
    links: RecipientLinks
    clock: Callable[[], datetime]
    lease: timedelta

    def _bounce(self, results: Sequence[DeliveryResult]) -> None:
        """Subscribers whose mailbox does not exist leave the list, once their rows are recorded."""
        gone = [
            r.recipient.subscriber_id
            for r in results
            if r.address_gone and r.outcome is Outcome.FAILED and r.recipient.subscriber_id
        ]
        if gone:
            self.store.mark_bounced(gone, self.clock())

    def send_claim(
        self,
        transport: Transport,
        messages: CampaignMessages,
        claim: Claim,
        stopping: Callable[[], bool],
        on_stop: Callable[[BatchStop], None] = lambda stop: None,
    ) -> BatchStop | None:
        """Send a claim, one part per issue its rows get (:meth:`Claim.by_issue`).

        Once a part ends in a stop, the parts not sent yet go back to pending.
        """
        parts = claim.by_issue()
        for index, part in enumerate(parts):
            if index and not self.store.renew(claim, self.clock()):
                # The lease went while an earlier part was out: these rows may be
                # another sender's now (expired, resent by the owner). Never handed
                # over by us, so they go back, if still ours, and are not sent.
                rest = [row.delivery_id for later in parts[index:] for row in later.rows]
                log.warning("claim lost its lease: %d row(s) left to other senders", len(rest))
                self.store.release(claim, rest)
                return None
            message = messages.for_slot(part.rows[0].catch_up_at)
            stop = self.send(transport, message, part, stopping, on_stop)
            if stop is not None:
                rest = [row.delivery_id for later in parts[index + 1 :] for row in later.rows]
                self.store.release(claim, rest)
                return stop
        return None

    def send(
        self,
        transport: Transport,
        message: CampaignMessage,
        claim: Claim,
        stopping: Callable[[], bool],
        on_stop: Callable[[BatchStop], None] = lambda stop: None,
    ) -> BatchStop | None:
        """Send one claimed batch and record it; return a reason to stop, if any.

        ``stopping`` says whether a stop was requested: rows given back then
        are the stop's doing, not a reason of their own. ``on_stop`` hears the
        reason before any row goes back to pending, so another lane of the run
        that claims those rows next already knows the run is stopping.
        """
        recipients = self.links.recipients(claim.rows)
        renew_every = max(self.lease.total_seconds() / 4, 0.05)
        heartbeat = Heartbeat(
            lambda: self.store.renew(claim, self.clock()), renew_every, self.lease, self.clock
        )
        try:
            with heartbeat:
                results = transport.send_batch(message, recipients)
        except TransportStopError as exc:
            # Nothing of this batch was accepted: it goes back to pending intact.
            stop = BatchStop(str(exc), needs_owner=exc.needs_owner)
            on_stop(stop)
            # By id: the claim may be one part of a larger one (same token).
            self.store.release(claim, [row.delivery_id for row in claim.rows])
            return stop
        if heartbeat.lost:
            # Our rows may have been expired (uncertain) meanwhile. Recording
            # still goes by our claim token: rows expired under it take our
            # word, rows requeued and claimed by another sender are untouched.
            log.warning("batch of %d: lease lost while it was out", len(claim.rows))
        # Any other exception leaves the rows in flight; a later run finds the
        # sender gone and reports them as uncertain rather than resending them.
        # Grouped by outcome: a SendGrid batch is typically one group, one UPDATE.
        by_outcome: dict[tuple[Outcome, str | None, str | None, str | None], list[int]] = {}
        for r in results:
            kind = r.failure_kind.value if r.failure_kind and r.outcome is Outcome.FAILED else None
            key = (r.outcome, r.message_id, r.error, kind)
            by_outcome.setdefault(key, []).append(r.recipient.delivery_id or 0)
        final = [
            OutcomeGroup(_FINAL_STATUS[outcome], tuple(ids), message_id, error, kind)
            for (outcome, message_id, error, kind), ids in by_outcome.items()
            if outcome in _FINAL_STATUS
        ]
        deferred: dict[str | None, list[int]] = {}  # by the transport's reason
        for (outcome, _m, error, _k), ids in by_outcome.items():
            if outcome is Outcome.DEFERRED:
                deferred.setdefault(error, []).extend(ids)
        try:
            self.store.record(claim, final, self.clock())
        finally:
            # Even if recording failed: rows never handed over go back to pending,
            # rather than stay in flight and be reported in doubt (never resent).
            later = self._give_back(claim, deferred, stopping, on_stop)
        # Last: a failure marking bounces no longer strands the deferred rows.
        self._bounce(results)
        return later

    def _give_back(
        self,
        claim: Claim,
        deferred: dict[str | None, list[int]],
        stopping: Callable[[], bool],
        on_stop: Callable[[BatchStop], None],
    ) -> BatchStop | None:
        """Rows the transport deferred (by its reason) back to pending; the stop they mean.

        A run that was asked to stop deferred them itself: no reason of their own.
        """
        ids = [delivery_id for group in deferred.values() for delivery_id in group]
        if not ids:
            return None
        later = None
        if not stopping():
            detail = (
                "; ".join(sorted(e for e in deferred if e))
                or "the transport could not take them now"
            )
            later = BatchStop(
                f"{len(ids)} message(s) not handed over ({detail}); run send again later"
            )
            on_stop(later)  # heard before the rows go back (see send)
        self.store.release(claim, ids)
        return later
