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
from pipeline.sending.plan import SendPlan
from pipeline.sending.runner import CampaignRunner

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
        """One pass: run every open campaign until it has no pending rows."""
        campaigns = self._newsletter.ledger.open_campaigns()
        batches = 0
        for campaign in campaigns:
            if self._stop.is_set():
                break
            self._runner = self._newsletter.runner(functools.partial(_log_plan, campaign.slug))
            result = self._runner.run(campaign)
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
