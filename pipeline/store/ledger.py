"""The delivery ledger on SQLAlchemy: the campaign runner's store.

Every state change is one guarded UPDATE (``WHERE status = <expected>``), or
an INSERT under the unique (campaign, subscriber) key by a claim that holds
the campaign's row, so two senders racing for the same rows cannot both win:
the database decides, on SQLite and PostgreSQL alike.

:class:`Ledger` is the one object the runner, the workers and the CLI hold; it
composes the ledger's parts, each in its own module: campaign records
(:mod:`pipeline.store.campaigns`), their audiences and the rows claims write
for them (:mod:`pipeline.store.snapshot`), claims (:mod:`pipeline.store.claims`),
and what a sender writes back (:mod:`pipeline.store.writeback`). The records
they trade in are re-exported here.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from datetime import datetime, timedelta

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql.elements import ColumnElement

from pipeline.render import RenderedIssue
from pipeline.store import campaigns, claims, leases
from pipeline.store.campaigns import CampaignCounts, CampaignRecord
from pipeline.store.catch_up_issues import catch_up_issue
from pipeline.store.claims import Claim, ClaimedRow
from pipeline.store.failures import mark_bounced
from pipeline.store.write_turns import turn, write_turns
from pipeline.store.writeback import OutcomeGroup, record_outcomes, release_rows

__all__ = [
    "CampaignCounts",
    "CampaignRecord",
    "Claim",
    "ClaimedRow",
    "Ledger",
    "OutcomeGroup",
]


class Ledger:
    """Campaigns and their delivery rows."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions
        # The runner's writes queue for SQLite's one writer (pipeline.store.write_turns).
        bind = sessions.kw.get("bind")
        self._turns = write_turns(bind) if isinstance(bind, Engine) else None

    # -- campaigns (pipeline.store.campaigns) ---------------------------------------

    def get_campaign(self, slug: str) -> CampaignRecord | None:
        """The campaign for an article, if one was planned."""
        return campaigns.get_campaign(self._sessions, slug)

    def campaigns(self) -> list[CampaignRecord]:
        """Every campaign, newest first."""
        return campaigns.all_campaigns(self._sessions)

    def open_campaigns(self) -> list[CampaignRecord]:
        """Campaigns with rows pending or in flight, oldest first (what workers pick up)."""
        return campaigns.open_campaigns(self._sessions)

    def sent_slugs(self) -> set[str]:
        """Articles that went (or are going) out: they are no longer in the queue."""
        return campaigns.sent_slugs(self._sessions)

    def count_audience(self) -> int:
        """How many subscribers a campaign planned now would reach."""
        return campaigns.count_audience(self._sessions)

    def plan(
        self,
        issue: RenderedIssue,
        transport: str,
        now: datetime,
        keep: ColumnElement[bool] | None = None,
    ) -> tuple[CampaignRecord, bool]:
        """Store the issue as rendered and fix the audience, in one transaction.

        Rows are written as claims reach people (:mod:`pipeline.store.snapshot`).

        Returns the campaign (carrying ``issue`` itself) and whether this call
        created it; if another process planned the article first, its campaign.
        """
        return campaigns.plan(self._sessions, issue, transport, now, keep)

    def add_new_subscribers(self, campaign_id: int, keep: ColumnElement[bool] | None = None) -> int:
        """Add rows for active subscribers who joined since the snapshot (and pass ``keep``)."""
        return campaigns.add_new_subscribers(self._sessions, campaign_id, keep)

    def mark_running(self, campaign_id: int, now: datetime) -> None:
        """Record that sending began (first time only)."""
        campaigns.mark_running(self._sessions, campaign_id, now)

    def pending(self, campaign_id: int) -> int:
        """Rows still pending, from their index alone (a run's choice of processes)."""
        return campaigns.pending_count(self._sessions, campaign_id)

    def counts(self, campaign: CampaignRecord) -> CampaignCounts:
        """Row counts by state."""
        return campaigns.counts(self._sessions, campaign)

    def finish_if_done(self, campaign_id: int, now: datetime) -> bool:
        """Mark the campaign done when no row is pending or in flight."""
        return campaigns.finish_if_done(self._sessions, campaign_id, now)

    # -- claims (pipeline.store.claims) ----------------------------------------------

    def still_wanted(self, subscriber_ids: Collection[int]) -> set[int]:
        """Of these subscribers, the ones still active (rechecked while a batch is out)."""
        return claims.still_wanted(self._sessions, subscriber_ids)

    def claim(
        self, campaign_id: int, size: int, now: datetime, owner: str, after: int = 0
    ) -> Claim:
        """Move up to ``size`` pending rows to sending under a fresh claim token.

        An empty claim means the campaign has no pending rows (see claims.claim).
        """
        return claims.claim(self._sessions, campaign_id, size, now, owner, after, self._turns)

    def renew(self, claim: Claim, now: datetime) -> bool:
        """Extend the lease on a claim still in flight; whether the claim still holds."""
        with turn(self._turns):
            return leases.renew(self._sessions, claim, now)

    def expire_stale(
        self,
        campaign_id: int,
        now: datetime,
        lease: timedelta,
        is_dead: Callable[[str], bool],
    ) -> int:
        """Rows in flight for a sender that is gone become uncertain (see claims)."""
        return leases.expire_stale(self._sessions, campaign_id, now, lease, is_dead)

    def requeue_uncertain(self, campaign_id: int) -> int:
        """Uncertain rows back to pending, for an owner who prefers a duplicate to a miss."""
        return leases.requeue_uncertain(self._sessions, campaign_id)

    # -- write-back (pipeline.store.writeback) ---------------------------------------

    def record(self, claim: Claim, groups: Sequence[OutcomeGroup], now: datetime) -> None:
        """Store final outcomes of a claim's rows, matched by its token (see writeback).

        Each group of several rows (a SendGrid request: one status, one
        message id) is one UPDATE; single rows (one Message-ID per SMTP
        message) go in one executemany; one group covering a whole claim (not
        one part of it: Claim.by_issue) is written by token. Rows expired to
        ``uncertain`` under the same token take the sender's word; rows claimed
        by someone else since are untouched.
        """
        groups = [g for g in groups if g.delivery_ids]
        if not groups:
            return
        with turn(self._turns), self._sessions.begin() as session:
            record_outcomes(session.connection(), claim, groups, now)

    def release(self, claim: Claim, delivery_ids: Sequence[int] | None = None) -> None:
        """Give a claim's rows back (all of them, or these): nothing was handed over."""
        if delivery_ids is not None and not delivery_ids:
            return
        with turn(self._turns), self._sessions.begin() as session:
            release_rows(session.connection(), claim, delivery_ids)

    def catch_up_issue(self, campaign_id: int, slot: datetime) -> RenderedIssue | None:
        """The issue catch-up rows of ``slot`` get (see store.catch_up_issues), or None."""
        return catch_up_issue(self._sessions, campaign_id, slot)

    def mark_bounced(self, subscriber_ids: Sequence[int], now: datetime) -> int:
        """Subscribers whose mailbox does not exist become ``bounced`` (see store.failures)."""
        return mark_bounced(self._sessions, subscriber_ids, now)
