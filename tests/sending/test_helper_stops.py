"""A forked helper that stops early tells the parent why, so the run reports it.

A real forked helper and the real ledger, on SQLite and PostgreSQL; the
transport is a scripted one (the outermost seam: what the provider answered),
which refuses the key in the helper only. The order is forced through the
ledger and a file, with bounded polls: the parent's first batch waits until
the helper holds a batch of its own, and the helper answers only once the
parent's lane has found nothing left to claim and closed its transport. The
helper's batch then goes back to pending, and only the helper knows why.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from sqlalchemy import func, select

from pipeline.newsletter import Newsletter
from pipeline.sending.runner import CampaignRunner
from pipeline.sending.transports.base import (
    CampaignMessage,
    DeliveryResult,
    Outcome,
    Recipient,
    Transport,
    TransportStopError,
)
from pipeline.store.models import Delivery, DeliveryStatus
from tests.helpers import SAMPLE_SLUG
from tests.sending.ledger_claims.helpers import _newsletter

WAIT = 30.0  # seconds: the bound on every poll below
REFUSED = "SendGrid refused the API key (401)"


def _until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, f"waited {WAIT:.0f} s for {what}"
        time.sleep(0.02)


class _RefusedInHelpers(Transport):
    """Sends in the parent process; in a forked helper, the provider refuses the key."""

    name = "scripted"

    def __init__(self, newsletter: Newsletter, parent: int, done: Path) -> None:
        super().__init__()
        self.newsletter, self.parent, self.done = newsletter, parent, done
        self.first = True

    def _claimed_by_the_helper(self) -> int:
        query = select(func.count()).where(
            Delivery.status == DeliveryStatus.SENDING,
            Delivery.claimed_by.not_like(f"%:{self.parent}:%"),
        )
        with self.newsletter.sessions() as session:
            return int(session.scalar(query) or 0)

    def close(self) -> None:
        if os.getpid() == self.parent:  # the parent's lane found nothing left to claim
            self.done.touch()

    def send_batch(
        self, message: CampaignMessage, recipients: Sequence[Recipient]
    ) -> list[DeliveryResult]:
        if os.getpid() != self.parent:
            _until(self.done.exists, "the parent's lane to end")
            raise TransportStopError(REFUSED, needs_owner=True)
        if self.first:
            self.first = False
            _until(lambda: self._claimed_by_the_helper() > 0, "the helper's claim")
        return [
            DeliveryResult(r, Outcome.SENT, message_id=f"<{r.delivery_id}@x>") for r in recipients
        ]


def test_a_helper_stopped_by_the_provider_is_reported_by_the_run(
    tmp_path: Path, database_url: str
) -> None:
    newsletter = _newsletter(tmp_path, database_url)
    parent = os.getpid()
    runner = CampaignRunner(
        newsletter.ledger,
        lambda: _RefusedInHelpers(newsletter, parent, tmp_path / "parent-done"),
        sender=newsletter.sender(),
        links=newsletter.links(),
        batch_size=1,
        clock=newsletter.clock,
        concurrency=1,
        processes=2,
        before_fork=newsletter.engine.dispose,
    )
    campaign, _ = newsletter.plan(SAMPLE_SLUG)
    result = runner.run(campaign)

    assert (result.counts.sent, result.counts.pending, result.counts.sending) == (4, 1, 0)
    assert result.stopped == REFUSED  # said by the helper: the parent met no stop itself
    assert result.needs_owner == REFUSED
    newsletter.close()
