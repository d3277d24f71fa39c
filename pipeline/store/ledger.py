"""The delivery ledger on SQLAlchemy: the campaign runner's store.

Every state change is one guarded UPDATE (``WHERE status = <expected>``), so
two senders racing for the same rows cannot both win: the database decides,
on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Integer,
    String,
    and_,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Result
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql.elements import ColumnElement

from pipeline.store.db import refresh_statistics
from pipeline.store.failures import mark_bounced
from pipeline.store.models import (
    Campaign,
    CampaignStatus,
    Delivery,
    DeliveryStatus,
    Subscriber,
    SubscriberStatus,
)
from pipeline.store.writeback import record_outcomes, release_rows


@dataclass(frozen=True)
class CampaignRecord:
    """A campaign as the runner sees it."""

    id: int
    slug: str
    subject: str
    preheader: str
    html: str
    text: str
    status: CampaignStatus
    transport: str
    created_at: datetime
    finished_at: datetime | None


@dataclass(frozen=True)
class CampaignCounts:
    """Ledger rows of one campaign by state; ``planned`` is their sum."""

    slug: str
    planned: int
    pending: int
    sending: int
    sent: int
    failed: int
    uncertain: int
    suppressed: int

    def as_dict(self) -> dict[str, int | str]:
        """The shape of ``status --json``."""
        return {
            "slug": self.slug,
            "planned": self.planned,
            "pending": self.pending,
            "sending": self.sending,
            "sent": self.sent,
            "failed": self.failed,
            "uncertain": self.uncertain,
            "suppressed": self.suppressed,
        }


@dataclass(frozen=True)
class ClaimedRow:
    """A ledger row claimed for sending, with the address it goes to."""

    delivery_id: int
    subscriber_id: int
    email: str
    first_name: str | None


@dataclass(frozen=True)
class Claim:
    """Rows one sender claimed together, under one token."""

    campaign_id: int
    token: str
    rows: list[ClaimedRow]


@dataclass(frozen=True)
class OutcomeGroup:
    """Claimed rows that ended the same way: one final state, message id and error."""

    status: DeliveryStatus
    delivery_ids: tuple[int, ...]
    message_id: str | None = None
    error: str | None = None
    failure_kind: str | None = None  # why a failed group failed (transports.base.FailureKind)


@dataclass(frozen=True)
class NewIssue:
    """What is stored when a campaign is planned."""

    slug: str
    subject: str
    preheader: str
    html: str
    text: str
    transport: str


def _status_is(status: DeliveryStatus) -> ColumnElement[bool]:
    """``deliveries.status = '<status>'``, written into the SQL as the partial indexes are.

    A bound parameter serves SQLite, but a PostgreSQL plan for a prepared
    statement cannot prove that a parameter equals an index's predicate, and
    would pass over ``ix_deliveries_pending`` and ``ix_deliveries_in_flight``.
    """
    return Delivery.status == literal(status, Delivery.status.type, literal_execute=True)


def _rowcount(result: Result[Any]) -> int:
    # DML statements return a CursorResult; its rowcount is what was changed.
    return int(getattr(result, "rowcount", 0) or 0)


def _in_flight(campaign_id: ColumnElement[int] | int) -> ColumnElement[bool]:
    """A campaign's rows in ``sending``, read through ``ix_deliveries_in_flight``.

    Every such row holds a claim token; saying so lets SQLite's planner see
    that the partial index answers the question, rather than walking all the
    campaign's rows through the unique index.
    """
    return and_(
        Delivery.campaign_id == campaign_id,
        _status_is(DeliveryStatus.SENDING),
        Delivery.claim_token.is_not(None),
    )


def _has_open_rows(campaign_id: ColumnElement[int] | int) -> ColumnElement[bool]:
    """Rows pending or in flight: two EXISTS, so each can use its partial index."""
    pending = exists().where(
        Delivery.campaign_id == campaign_id, _status_is(DeliveryStatus.PENDING)
    )
    return or_(pending, exists().where(_in_flight(campaign_id)))


def _record(campaign: Campaign) -> CampaignRecord:
    return CampaignRecord(
        id=campaign.id,
        slug=campaign.slug,
        subject=campaign.subject,
        preheader=campaign.preheader,
        html=campaign.html,
        text=campaign.text,
        status=campaign.status,
        transport=campaign.transport,
        created_at=campaign.created_at,
        finished_at=campaign.finished_at,
    )


class Ledger:
    """Campaigns and their delivery rows."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def get_campaign(self, slug: str) -> CampaignRecord | None:
        """The campaign for an article, if one was planned."""
        with self._sessions() as session:
            campaign = session.scalar(select(Campaign).where(Campaign.slug == slug))
            return _record(campaign) if campaign else None

    def campaigns(self) -> list[CampaignRecord]:
        """Every campaign, newest first."""
        with self._sessions() as session:
            rows = session.scalars(select(Campaign).order_by(Campaign.id.desc()))
            return [_record(c) for c in rows]

    def open_campaigns(self) -> list[CampaignRecord]:
        """Campaigns with rows pending or in flight, oldest first (what workers pick up).

        In-flight rows count so that a worker also notices a dead sender's batch.
        """
        with self._sessions() as session:
            rows = session.scalars(
                select(Campaign)
                .where(_has_open_rows(Campaign.__table__.c.id))
                .order_by(Campaign.id)
            )
            return [_record(c) for c in rows]

    def sent_slugs(self) -> set[str]:
        """Articles that went (or are going) out: they are no longer in the queue."""
        with self._sessions() as session:
            return set(session.scalars(select(Campaign.slug)))

    def count_audience(self) -> int:
        """How many subscribers a campaign planned now would reach."""
        with self._sessions() as session:
            query = select(func.count()).where(Subscriber.status == SubscriberStatus.ACTIVE)
            return int(session.scalar(query) or 0)

    def still_wanted(self, subscriber_ids: Collection[int]) -> set[int]:
        """Of these subscribers, the ones still active: one primary-key lookup.

        A per-message transport asks this every few dozen messages of a batch,
        so that someone who leaves while a long batch is out is not mailed.
        """
        if not subscriber_ids:
            return set()
        with self._sessions() as session:
            rows = session.scalars(
                select(Subscriber.id).where(
                    Subscriber.id.in_(list(subscriber_ids)),
                    Subscriber.status == SubscriberStatus.ACTIVE,
                )
            )
            return set(rows)

    def plan(self, issue: NewIssue, now: datetime) -> tuple[CampaignRecord, bool]:
        """Create the campaign and snapshot the audience in one transaction.

        Returns the campaign and whether this call created it. If another
        process planned the same article first, its campaign is returned.
        """
        try:
            with self._sessions.begin() as session:
                campaign = Campaign(
                    slug=issue.slug,
                    subject=issue.subject,
                    preheader=issue.preheader,
                    html=issue.html,
                    text=issue.text,
                    transport=issue.transport,
                    status=CampaignStatus.PLANNED,
                    created_at=now,
                )
                session.add(campaign)
                session.flush()
                self._snapshot(session, campaign.id, fresh=True)
                record = _record(campaign)
        except IntegrityError:
            existing = self.get_campaign(issue.slug)
            if existing is None:
                raise
            return existing, False
        refresh_statistics(self._sessions, "deliveries")
        return record, True

    def add_new_subscribers(self, campaign_id: int) -> int:
        """Add rows for active subscribers who joined since the snapshot."""
        with self._sessions.begin() as session:
            added = self._snapshot(session, campaign_id)
        if added:
            refresh_statistics(self._sessions, "deliveries")
        return added

    @staticmethod
    def _snapshot(session: Session, campaign_id: int, *, fresh: bool = False) -> int:
        # One INSERT ... SELECT: the audience never passes through Python.
        audience = select(
            literal(campaign_id, Integer),
            Subscriber.id,
            literal(DeliveryStatus.PENDING.value, String),
            literal(0, Integer),
        ).where(Subscriber.status == SubscriberStatus.ACTIVE)
        if not fresh:
            # Adding to a campaign: only those not in it yet. (A campaign
            # created in this transaction has no rows to look up.)
            already = exists().where(
                Delivery.campaign_id == campaign_id, Delivery.subscriber_id == Subscriber.id
            )
            audience = audience.where(~already)
        # Ledger order = sign-up order, on every database.
        audience = audience.order_by(Subscriber.id)
        # SQLAlchemy keeps an INSERT's rowcount only when asked to.
        result = session.execute(
            insert(Delivery).from_select(
                ["campaign_id", "subscriber_id", "status", "attempts"], audience
            ),
            execution_options={"preserve_rowcount": True},
        )
        return _rowcount(result)

    def mark_running(self, campaign_id: int, now: datetime) -> None:
        """Record that sending began (first time only)."""
        with self._sessions.begin() as session:
            session.execute(
                update(Campaign)
                .where(Campaign.id == campaign_id, Campaign.started_at.is_(None))
                .values(started_at=now)
            )
            session.execute(
                update(Campaign)
                .where(Campaign.id == campaign_id)
                .values(status=CampaignStatus.RUNNING, finished_at=None)
            )

    def claim(
        self, campaign_id: int, size: int, now: datetime, owner: str, after: int = 0
    ) -> Claim:
        """Move up to ``size`` pending rows to sending under a fresh claim token.

        The guarded UPDATE is the whole concurrency story: a row another sender
        claimed first no longer matches ``status = 'pending'``. When a race
        leaves this sender with nothing while rows are still pending, it tries
        again, so an empty claim really means the campaign has no pending rows.

        ``after`` (the last row id this sender claimed) starts the search past
        the rows already sent. PostgreSQL may walk the primary key from the
        start when its statistics still say every row is pending (they do,
        until autovacuum next analyzes), and each claim would then step over
        all the rows sent so far. Nothing past ``after``: the search starts
        again from the beginning, for rows given back or skipped meanwhile.

        Rows taken but all suppressed (everyone in them left) say nothing
        about the rest, so the search goes on at once: however long a run of
        suppressed rows, an empty claim means no row is pending.
        """
        while True:
            claim, taken = self._claim_once(campaign_id, size, now, owner, after)
            if claim.rows:
                return claim
            if taken > 0:
                continue  # every row taken was suppressed: they are no longer pending
            if after:
                after = 0
                continue
            if not self._has_pending(campaign_id):
                return claim

    def _has_pending(self, campaign_id: int) -> bool:
        """Whether rows are still pending, once claims running elsewhere have settled.

        A claim skips rows another sender is claiming at that moment (SKIP
        LOCKED), so an empty claim can mean "someone else is taking the last
        rows". Locking without SKIP waits for that claim to commit, then sees
        the truth, however quickly the caller asks again.
        """
        with self._sessions.begin() as session:
            first = session.scalar(
                select(Delivery.id)
                .where(Delivery.campaign_id == campaign_id, _status_is(DeliveryStatus.PENDING))
                .limit(1)
                .with_for_update()
            )
            return first is not None

    def _claim_once(
        self, campaign_id: int, size: int, now: datetime, owner: str, after: int
    ) -> tuple[Claim, int]:
        """One guarded claim: the rows to send, and how many rows it took (suppressed too)."""
        token = uuid.uuid4().hex
        claimable = (
            select(Delivery.id)
            .where(
                Delivery.campaign_id == campaign_id,
                _status_is(DeliveryStatus.PENDING),
                Delivery.id > after,
            )
            .order_by(Delivery.id)
            .limit(size)
            # PostgreSQL: concurrent workers skip each other's rows instead of
            # queueing behind them. SQLite renders no FOR UPDATE; its single
            # writer makes the guarded UPDATE below enough.
            .with_for_update(skip_locked=True)
            # MATERIALIZED: evaluated once. Folded into the UPDATE as a plain
            # subquery, PostgreSQL may re-run it and claim more than ``size``.
            # Nested inside the IN (...): Python's sqlite3 reports no rowcount
            # (-1) for a statement that starts with WITH, and the count taken
            # tells a claim whose rows were all suppressed from an empty one.
            .cte("claimable", nesting=True)
            .prefix_with("MATERIALIZED")
        )
        candidates = select(claimable.c.id)
        with self._sessions.begin() as session:
            # Core execution: plain rows, no ORM bookkeeping on the hot path.
            connection = session.connection()
            taken = _rowcount(
                connection.execute(
                    update(Delivery)
                    .where(Delivery.id.in_(candidates), Delivery.status == DeliveryStatus.PENDING)
                    .values(
                        status=DeliveryStatus.SENDING,
                        claim_token=token,
                        claimed_at=now,
                        claimed_by=owner,
                        attempts=Delivery.attempts + 1,
                    )
                )
            )
            if not taken:
                return Claim(campaign_id=campaign_id, token=token, rows=[]), 0
            rows = connection.execute(
                select(Delivery.id, Subscriber.id, Subscriber.email, Subscriber.first_name)
                .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
                .where(
                    Delivery.campaign_id == campaign_id,
                    Delivery.claim_token == token,
                    _status_is(DeliveryStatus.SENDING),
                    Subscriber.status == SubscriberStatus.ACTIVE,
                )
                .order_by(Delivery.id)
            ).all()
            claimed = [
                ClaimedRow(delivery_id=d, subscriber_id=s, email=e, first_name=f)
                for d, s, e, f in rows
            ]
            if len(claimed) < taken:
                # Checked here, per batch, rather than over the whole campaign: someone
                # who left (or was erased) since planning is suppressed, never mailed.
                still_here = exists().where(
                    Subscriber.id == Delivery.subscriber_id,
                    Subscriber.status == SubscriberStatus.ACTIVE,
                )
                connection.execute(
                    update(Delivery)
                    .where(
                        Delivery.campaign_id == campaign_id,
                        Delivery.claim_token == token,
                        _status_is(DeliveryStatus.SENDING),
                        ~still_here,
                    )
                    .values(status=DeliveryStatus.SUPPRESSED, claim_token=None)
                )
        return Claim(campaign_id=campaign_id, token=token, rows=claimed), taken

    def renew(self, claim: Claim, now: datetime) -> bool:
        """Extend the lease on a claim still in flight; whether the claim still holds.

        False when no row of the claim is in flight any more: another process
        expired it (the rows are ``uncertain`` now), so this sender lost its lease.
        """
        with self._sessions.begin() as session:
            result = session.execute(
                update(Delivery)
                .where(
                    Delivery.campaign_id == claim.campaign_id,
                    Delivery.claim_token == claim.token,
                    _status_is(DeliveryStatus.SENDING),
                )
                .values(claimed_at=now),
                execution_options={"synchronize_session": False},
            )
            return _rowcount(result) > 0

    def record(self, claim: Claim, groups: Sequence[OutcomeGroup], now: datetime) -> None:
        """Store final outcomes of a claim's rows, matched by its token (see writeback).

        Each group of several rows (a SendGrid request: one status, one
        message id) is one UPDATE; single rows (one Message-ID per SMTP
        message) go in one executemany; one group covering the whole claim is
        written by token. Rows expired to ``uncertain`` under the same token
        take the sender's word; rows claimed by someone else since are untouched.
        """
        groups = [g for g in groups if g.delivery_ids]
        if not groups:
            return
        with self._sessions.begin() as session:
            record_outcomes(session.connection(), claim, groups, now)

    def release(self, claim: Claim, delivery_ids: Sequence[int] | None = None) -> None:
        """Give a claim's rows back (all of them, or these): nothing was handed over."""
        if delivery_ids is not None and not delivery_ids:
            return
        with self._sessions.begin() as session:
            release_rows(session.connection(), claim, delivery_ids)

    def expire_stale(
        self,
        campaign_id: int,
        now: datetime,
        lease: timedelta,
        is_dead: Callable[[str], bool],
    ) -> int:
        """Rows in flight for a sender that is gone become uncertain.

        A sender is gone when ``is_dead(claimed_by)`` says so (a crashed
        process on this host) or when it has not renewed its lease in time.
        Those rows may or may not have left: resending could double-send and
        dropping could miss, so they are flagged for the owner instead. They
        keep their claim token, so that if their sender was only slow and
        reports later, the ledger takes its word (see writeback).
        """
        in_flight = _in_flight(campaign_id)
        with self._sessions.begin() as session:
            owners = session.scalars(select(Delivery.claimed_by).where(in_flight).distinct()).all()
            dead = [owner for owner in owners if owner is not None and is_dead(owner)]
            result = session.execute(
                update(Delivery)
                .where(
                    in_flight,
                    or_(Delivery.claimed_at < now - lease, Delivery.claimed_by.in_(dead)),
                )
                .values(
                    status=DeliveryStatus.UNCERTAIN,
                    error="the sender stopped while this message was in flight",
                ),
                execution_options={"synchronize_session": False},
            )
            return _rowcount(result)

    def requeue_uncertain(self, campaign_id: int) -> int:
        """Uncertain rows back to pending, for an owner who prefers a duplicate to a miss.

        The claim token goes: the old sender's late report then matches
        nothing, and whoever claims the rows next does so under a new token.
        """
        with self._sessions.begin() as session:
            result = session.execute(
                update(Delivery)
                .where(
                    Delivery.campaign_id == campaign_id,
                    Delivery.status == DeliveryStatus.UNCERTAIN,
                )
                .values(
                    status=DeliveryStatus.PENDING,
                    error=None,
                    claim_token=None,
                    claimed_at=None,
                    claimed_by=None,
                ),
                execution_options={"synchronize_session": False},
            )
            return _rowcount(result)

    def counts(self, campaign: CampaignRecord) -> CampaignCounts:
        """Row counts by state."""
        with self._sessions() as session:
            rows = session.execute(
                select(Delivery.status, func.count())
                .where(Delivery.campaign_id == campaign.id)
                .group_by(Delivery.status)
            )
            by_status = {DeliveryStatus(status): int(n) for status, n in rows}
        values = {state.value: by_status.get(state, 0) for state in DeliveryStatus}
        return CampaignCounts(slug=campaign.slug, planned=sum(values.values()), **values)

    def mark_bounced(self, subscriber_ids: Sequence[int], now: datetime) -> int:
        """Subscribers whose mailbox does not exist become ``bounced`` (see store.failures)."""
        return mark_bounced(self._sessions, subscriber_ids, now)

    def finish_if_done(self, campaign_id: int, now: datetime) -> bool:
        """Mark the campaign done when no row is pending or in flight."""
        with self._sessions.begin() as session:
            result = session.execute(
                update(Campaign)
                .where(Campaign.id == campaign_id, ~_has_open_rows(campaign_id))
                .values(status=CampaignStatus.DONE, finished_at=now)
            )
            return _rowcount(result) > 0
