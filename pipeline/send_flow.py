"""Sending one article's campaign: plan, resume, run, record the stop, tell the owner.

What ``newsletter send``, the scheduler, the dashboard and the catch-up pass
all mean by "send": :meth:`pipeline.newsletter.Newsletter.send` is its face,
this is its body (kept out of the facade so it stays a list of short
delegations). A repeat resumes from the ledger and never resends a row.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pipeline.sending.brake import Brake
from pipeline.sending.plan import SendPlan
from pipeline.sending.runner import CampaignRunner
from pipeline.sending.transports.base import RETRYABLE_FAILURES
from pipeline.store.failures import requeue_failed
from pipeline.store.ledger import CampaignCounts
from pipeline.store.stops import StopRecord, StopStore

if TYPE_CHECKING:
    from pipeline.newsletter import Newsletter


@dataclass(frozen=True)
class SendReport:
    """What a ``send`` did."""

    counts: CampaignCounts
    created: bool
    added: int
    dry_run: bool
    stopped: str | None = None
    requeued: int = 0
    retried: int = 0  # failed rows sent again (``retry_failed``)
    #: Set when the run stopped with rows pending: what it waits for (see ``store.stops``).
    stop: StopRecord | None = None

    @property
    def complete(self) -> bool:
        """Nothing failed, nothing in doubt, nothing left unsent.

        Rows another live sender has in flight (``sending``) do not count
        against this run: that sender records them.
        """
        c = self.counts
        return c.failed == 0 and c.uncertain == 0 and c.pending == 0


def send_article(
    newsletter: Newsletter,
    slug: str,
    *,
    dry_run: bool = False,
    include_new: bool = False,
    resend_uncertain: bool = False,
    retry_failed: bool = False,
    progress: Callable[[CampaignCounts], None] | None = None,
    on_runner: Callable[[CampaignRunner], None] | None = None,
    by_scheduler: bool = False,
    on_plan: Callable[[SendPlan], None] | None = None,
) -> SendReport:
    """The body of :meth:`Newsletter.send <pipeline.newsletter.Newsletter.send>` (see there)."""
    if dry_run:
        return _dry_run(newsletter, slug)
    campaign, created = newsletter.plan(slug)
    added = (
        0
        if created or not include_new
        else newsletter.ledger.add_new_subscribers(campaign.id, newsletter.live_keep(slug))
    )
    requeued = 0
    if resend_uncertain:
        # Expire first: a batch a crashed sender left in flight is in doubt
        # only once expired, and it is exactly what the owner means to resend.
        newsletter.runner().expire_stale(campaign)
        requeued = newsletter.ledger.requeue_uncertain(campaign.id)
    retried = (
        requeue_failed(newsletter.sessions, campaign.id, RETRYABLE_FAILURES) if retry_failed else 0
    )
    stops = StopStore(newsletter.sessions)
    if not by_scheduler:
        Brake.of(newsletter.settings.sending, newsletter.sessions).release(
            newsletter.clock(), campaign.id
        )
        stops.clear(campaign.id)
    runner = newsletter.runner(on_plan)
    if on_runner is not None:
        on_runner(runner)
    result = runner.run(campaign, progress)
    stop = stops.after_run(
        campaign.id,
        newsletter.clock(),
        pending=result.counts.pending,
        stopped=result.stopped,
        needs_owner=result.needs_owner,
        asked_to_stop=runner.stopping,
    )
    if newsletter.settings.owner.email:  # the receipt, or an alert if it waits for the owner
        from pipeline.owner.receipts import after_run

        after_run(newsletter, slug, result.counts, stop)
    return SendReport(
        counts=result.counts,
        created=created,
        added=added,
        dry_run=False,
        stopped=result.stopped,
        requeued=requeued,
        retried=retried,
        stop=stop,
    )


def _dry_run(newsletter: Newsletter, slug: str) -> SendReport:
    """What a send would do: the counts so far, or the audience a new campaign would have."""
    campaign = newsletter.ledger.get_campaign(slug)
    if campaign is not None:
        return SendReport(newsletter.ledger.counts(campaign), created=False, added=0, dry_run=True)
    newsletter.render(slug)  # proves the issue renders
    audience = newsletter.ledger.count_audience()
    counts = CampaignCounts(
        slug=slug,
        planned=audience,
        pending=audience,
        sending=0,
        sent=0,
        failed=0,
        uncertain=0,
        suppressed=0,
    )
    return SendReport(counts, created=False, added=0, dry_run=True)
