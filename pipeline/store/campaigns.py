"""Campaign records: planning (the issue stored once, the audience fixed), reading, finishing.

A campaign is planned once per article: its :class:`~pipeline.render.RenderedIssue`
is stored as rendered then, and every later reader (the runner, a worker, the
archive) gets that same record back as :attr:`CampaignRecord.issue`, never a
copy reshaped field by field. The :class:`~pipeline.store.ledger.Ledger` calls
these functions; the claims on a campaign's rows are in :mod:`pipeline.store.claims`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Integer, String, exists, func, insert, literal, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql.elements import ColumnElement

from pipeline.render import RenderedIssue
from pipeline.store import snapshot
from pipeline.store.db import refresh_statistics, rowcount
from pipeline.store.ledger_links import locking_audience
from pipeline.store.models import (
    Campaign,
    CampaignStatus,
    Delivery,
    DeliveryStatus,
    Subscriber,
    SubscriberStatus,
)
from pipeline.store.row_conditions import has_open_rows, pending


@dataclass(frozen=True)
class CampaignRecord:
    """A campaign as the runner sees it: the issue exactly as planned, and its state."""

    id: int
    issue: RenderedIssue
    status: CampaignStatus
    transport: str
    created_at: datetime
    finished_at: datetime | None

    @property
    def slug(self) -> str:
        """The article's slug: the campaign's name everywhere (one per article)."""
        return self.issue.slug


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


def _record(campaign: Campaign, issue: RenderedIssue | None = None) -> CampaignRecord:
    """The record of a stored campaign; ``issue`` when the caller holds the one just stored."""
    if issue is None:
        issue = RenderedIssue(
            slug=campaign.slug,
            subject=campaign.subject,
            preheader=campaign.preheader,
            html=campaign.html,
            text=campaign.text,
        )
    return CampaignRecord(
        id=campaign.id,
        issue=issue,
        status=campaign.status,
        transport=campaign.transport,
        created_at=campaign.created_at,
        finished_at=campaign.finished_at,
    )


def get_campaign(sessions: sessionmaker[Session], slug: str) -> CampaignRecord | None:
    """The campaign for an article, if one was planned."""
    with sessions() as session:
        campaign = session.scalar(select(Campaign).where(Campaign.slug == slug))
        return _record(campaign) if campaign else None


def all_campaigns(sessions: sessionmaker[Session]) -> list[CampaignRecord]:
    """Every campaign, newest first."""
    with sessions() as session:
        rows = session.scalars(select(Campaign).order_by(Campaign.id.desc()))
        return [_record(c) for c in rows]


def open_campaigns(sessions: sessionmaker[Session]) -> list[CampaignRecord]:
    """Campaigns with rows pending or in flight, oldest first (what workers pick up).

    In-flight rows count so that a worker also notices a dead sender's batch,
    and people without a row yet so that a stopped run's audience is finished.
    """
    with sessions() as session:
        rows = session.scalars(
            select(Campaign)
            .where(or_(has_open_rows(Campaign.__table__.c.id), snapshot.has_unclaimed()))
            .order_by(Campaign.id)
        )
        return [_record(c) for c in rows]


def sent_slugs(sessions: sessionmaker[Session]) -> set[str]:
    """Articles that went (or are going) out: they are no longer in the queue."""
    with sessions() as session:
        return set(session.scalars(select(Campaign.slug)))


def count_audience(sessions: sessionmaker[Session]) -> int:
    """How many subscribers a campaign planned now would reach."""
    with sessions() as session:
        query = select(func.count()).where(Subscriber.status == SubscriberStatus.ACTIVE)
        return int(session.scalar(query) or 0)


def plan(
    sessions: sessionmaker[Session],
    issue: RenderedIssue,
    transport: str,
    now: datetime,
    keep: ColumnElement[bool] | None = None,
) -> tuple[CampaignRecord, bool]:
    """Create the campaign and fix its audience in one transaction.

    Returns the campaign and whether this call created it. If another
    process planned the same article first, its campaign is returned.
    ``keep`` narrows the audience (a series part skips people catching up:
    :func:`pipeline.store.catch_up.live_keep`).
    """
    try:
        with sessions.begin() as session:
            campaign = Campaign(
                slug=issue.slug,
                subject=issue.subject,
                preheader=issue.preheader,
                html=issue.html,
                text=issue.text,
                transport=transport,
                status=CampaignStatus.PLANNED,
                created_at=now,
            )
            session.add(campaign)
            session.flush()
            # Who is in it; claims write their rows (pipeline.store.snapshot).
            snapshot.fix_audience(session, campaign.id, keep)
            record = _record(campaign, issue)
    except IntegrityError:
        existing = get_campaign(sessions, issue.slug)
        if existing is None:
            raise
        return existing, False
    return record, True


def add_new_subscribers(
    sessions: sessionmaker[Session], campaign_id: int, keep: ColumnElement[bool] | None = None
) -> int:
    """Add rows for active subscribers who joined since the snapshot (and pass ``keep``).

    The audience's own people get their rows first, so that they are not
    counted as new.
    """
    with sessions.begin() as session:
        snapshot.write_all_rows(session, campaign_id)
        added = _snapshot(session, campaign_id, keep=keep)
    if added:
        refresh_statistics(sessions, "deliveries")
    return added


def _snapshot(session: Session, campaign_id: int, keep: ColumnElement[bool] | None) -> int:
    # One INSERT ... SELECT: the audience never passes through Python.
    audience = select(
        literal(campaign_id, Integer),
        Subscriber.id,
        literal(DeliveryStatus.PENDING.value, String),
        literal(0, Integer),
    ).where(Subscriber.status == SubscriberStatus.ACTIVE)
    if keep is not None:
        audience = audience.where(keep)
    # Adding to a campaign: only those not in it yet.
    already = exists().where(
        Delivery.campaign_id == campaign_id, Delivery.subscriber_id == Subscriber.id
    )
    audience = audience.where(~already)
    # Ledger order = sign-up order, on every database.
    audience = audience.order_by(Subscriber.id)
    # SQLAlchemy keeps an INSERT's rowcount only when asked to.
    result = session.execute(
        insert(Delivery).from_select(
            ["campaign_id", "subscriber_id", "status", "attempts"], locking_audience(audience)
        ),
        execution_options={"preserve_rowcount": True},
    )
    return rowcount(result)


def mark_running(sessions: sessionmaker[Session], campaign_id: int, now: datetime) -> None:
    """Record that sending began (first time only)."""
    with sessions.begin() as session:
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


def counts(sessions: sessionmaker[Session], campaign: CampaignRecord) -> CampaignCounts:
    """Row counts by state."""
    with sessions() as session:
        rows = session.execute(
            select(Delivery.status, func.count())
            .where(Delivery.campaign_id == campaign.id)
            .group_by(Delivery.status)
        )
        by_status = {DeliveryStatus(status): int(n) for status, n in rows}
        # People of the audience no claim has reached yet are pending.
        unclaimed = snapshot.unclaimed(session, [campaign.id]).get(campaign.id, 0)
    values = {state.value: by_status.get(state, 0) for state in DeliveryStatus}
    values[DeliveryStatus.PENDING.value] += unclaimed
    return CampaignCounts(slug=campaign.slug, planned=sum(values.values()), **values)


def pending_count(sessions: sessionmaker[Session], campaign_id: int) -> int:
    """Rows still pending: counted in ``ix_deliveries_pending`` alone, not over every row.

    A run asks this once to choose its processes; :func:`counts` reads all of
    a campaign's rows (a tenth of a second for 100,000 on SQLite). People of
    the audience no claim has reached yet count too.
    """
    with sessions() as session:
        count = session.scalar(
            select(func.count())
            .select_from(Delivery)
            .where(Delivery.campaign_id == campaign_id, pending())
        )
        unclaimed = snapshot.unclaimed(session, [campaign_id]).get(campaign_id, 0)
        return int(count or 0) + unclaimed


def finish_if_done(sessions: sessionmaker[Session], campaign_id: int, now: datetime) -> bool:
    """Mark the campaign done when everyone has a row and none is pending or in flight."""
    with sessions.begin() as session:
        result = session.execute(
            update(Campaign)
            .where(
                Campaign.id == campaign_id,
                ~snapshot.has_unclaimed(),
                ~has_open_rows(campaign_id),
            )
            .values(status=CampaignStatus.DONE, finished_at=now)
        )
        return rowcount(result) > 0
