"""``newsletter worker``: send the batches of every campaign that has rows pending.

Any number of workers, on any number of machines sharing one PostgreSQL
database, can run at once: each batch is claimed with a guarded UPDATE (and
``FOR UPDATE SKIP LOCKED`` on PostgreSQL), so no row is ever handed to two
workers. A worker that dies mid-batch leaves its rows in flight; the next run
over that campaign finds them (a dead process in the same PID namespace, or
a lease not renewed in time) and reports them as uncertain.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from pipeline.newsletter import Newsletter
from pipeline.owner.receipts import after_run
from pipeline.sending.plan import SendPlan
from pipeline.sending.runner import CampaignRunner, RunResult
from pipeline.store.ledger import CampaignRecord
from pipeline.store.models import WaitingFor
from pipeline.store.stops import StopStore

log = logging.getLogger("pipeline.sending.worker")


def _log_plan(slug: str, plan: SendPlan) -> None:
    log.info("campaign %s: %s", slug, plan.describe())


@dataclass(frozen=True)
class WorkerPass:
    """What one pass over the open campaigns did."""

    campaigns: int
    batches: int = 0
    stopped: str | None = None


class Worker:
    """Takes batches from every campaign with pending rows until told to stop."""

    def __init__(self, newsletter: Newsletter, *, poll_seconds: float = 5.0) -> None:
        self._newsletter = newsletter
        self._poll_seconds = poll_seconds
        self._stop = threading.Event()
        self._runner: CampaignRunner | None = None

    def request_stop(self) -> None:
        """Finish the batch in hand, then stop. Safe from a signal handler."""
        self._stop.set()
        if self._runner is not None:
            self._runner.request_stop()

    @property
    def stopping(self) -> bool:
        """Whether a stop was requested."""
        return self._stop.is_set()

    def run_once(self) -> WorkerPass:
        """One pass: run every open campaign until it has no pending rows.

        A campaign waiting for its owner (credentials or sender refused, the
        bounce brake) is left alone: only ``send SLUG --yes`` or ``schedule
        resume`` answers it, as for the scheduler.
        """
        waiting = {
            campaign_id
            for campaign_id, stop in StopStore(self._newsletter.sessions).all().items()
            if stop.waiting_for is WaitingFor.OWNER
        }
        campaigns = [c for c in self._newsletter.ledger.open_campaigns() if c.id not in waiting]
        batches = 0
        for campaign in campaigns:
            if self._stop.is_set():
                break
            self._runner = self._newsletter.runner(functools.partial(_log_plan, campaign.slug))
            result = self._runner.run(campaign)
            self._after_run(campaign, result)
            batches += result.batches
            c = result.counts
            log.info(
                "campaign %s: %d sent, %d failed, %d uncertain, %d pending",
                c.slug,
                c.sent,
                c.failed,
                c.uncertain,
                c.pending,
            )
            if result.stopped and not self._stop.is_set():
                # The transport refused or deferred: try again next pass.
                log.warning("campaign %s: %s", c.slug, result.stopped)
                return WorkerPass(len(campaigns), batches, stopped=result.stopped)
        return WorkerPass(len(campaigns), batches)

    def _after_run(self, campaign: CampaignRecord, result: RunResult) -> None:
        """What ``send`` does after a run, so a campaign a worker ends is told about too.

        The owner gets the receipt once the campaign ended (at most once per
        campaign, whoever finishes it: the reservation in ``notifications``
        decides), or the alert when it waits for them. Only a stop that needs
        the owner is recorded: a passing fault is retried by this worker's own
        next pass, not handed to the scheduler's backoff.
        """
        newsletter = self._newsletter
        counts = result.counts
        stops = StopStore(newsletter.sessions)
        stop = None
        if counts.pending == 0:
            stops.clear(campaign.id)
        elif result.needs_owner is not None:
            stop = stops.record(
                campaign.id, result.needs_owner, newsletter.clock(), needs_owner=True
            )
        if newsletter.settings.owner.email:
            after_run(newsletter, campaign.slug, counts, stop)

    def run_forever(self, on_idle: Callable[[], None] | None = None) -> None:
        """Pass after pass, waiting ``poll_seconds`` whenever there is nothing to do."""
        while not self._stop.is_set():
            done = self.run_once()
            # Nothing claimed (no open campaign, or only others' batches in
            # flight), or the transport asked for a pause: wait before looking again.
            if done.batches == 0 or done.stopped:
                if on_idle is not None:
                    on_idle()
                self._stop.wait(self._poll_seconds)
