"""Read-only queries behind the dashboard's Schedule and Campaigns pages.

The ledger's counts and failure reasons are :mod:`pipeline.store.campaigns`
and :mod:`pipeline.store.reports`; these are the few figures only the
dashboard shows: who a send would reach now, the events of one campaign
(with unsubscribes, which ``status --json`` leaves out), how many rows were
sent by when (the chart), and the opens and clicks of every article.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql.elements import ColumnElement

from pipeline.store.events import event_counts
from pipeline.store.models import (
    Campaign,
    Delivery,
    DeliveryStatus,
    Subscriber,
    SubscriberStatus,
    WebhookEvent,
)

#: Providers' names for "this person left from this email" (SendGrid's two kinds).
UNSUBSCRIBE_EVENTS: Final = ("unsubscribe", "group_unsubscribe")
#: Providers' names for an open and a click.
OPEN_EVENT: Final = "open"
CLICK_EVENT: Final = "click"


@dataclass(frozen=True)
class SentPoint:
    """How many rows of a campaign were sent at or before ``at``."""

    at: datetime
    sent: int


@dataclass(frozen=True)
class Engagement:
    """Distinct addresses that opened and clicked one article's campaign."""

    slug: str
    subject: str
    opened: int
    clicked: int


def audience_size(sessions: sessionmaker[Session], keep: ColumnElement[bool] | None) -> int:
    """Active subscribers a campaign planned now would reach (``keep`` as ``plan`` uses it)."""
    query = select(func.count()).where(Subscriber.status == SubscriberStatus.ACTIVE)
    if keep is not None:
        query = query.where(keep)
    with sessions() as session:
        return int(session.scalar(query) or 0)


def campaign_event_counts(sessions: sessionmaker[Session], campaign_id: int) -> dict[str, int]:
    """``event_counts`` plus ``unsubscribed``: distinct addresses that left from this email."""
    counts = event_counts(sessions, campaign_id)
    query = select(func.count(func.distinct(WebhookEvent.email))).where(
        WebhookEvent.campaign_id == campaign_id, WebhookEvent.event.in_(UNSUBSCRIBE_EVENTS)
    )
    with sessions() as session:
        counts["unsubscribed"] = int(session.scalar(query) or 0)
    return counts


def sends_over_time(
    sessions: sessionmaker[Session], campaign_id: int, points: int = 12
) -> list[SentPoint]:
    """Cumulative sent rows at ``points`` evenly spaced moments from the first send to the last.

    One pass over the campaign's rows (a sum per moment), whatever its size:
    the rows' times never travel to Python. Empty when nothing was sent yet.
    """
    sent = Delivery.status == DeliveryStatus.SENT
    with sessions() as session:
        first, last = session.execute(
            select(func.min(Delivery.sent_at), func.max(Delivery.sent_at)).where(
                Delivery.campaign_id == campaign_id, sent
            )
        ).one()
        if first is None or last is None:
            return []
        steps = max(1, points - 1) if last > first else 1
        moments = [first + (last - first) * i / steps for i in range(steps + 1)]
        moments[-1] = last  # no rounding may leave the last row out
        sums = [func.sum(case((Delivery.sent_at <= moment, 1), else_=0)) for moment in moments]
        totals = session.execute(
            select(*sums).where(Delivery.campaign_id == campaign_id, sent)
        ).one()
    return [SentPoint(at, int(n or 0)) for at, n in zip(moments, totals, strict=True)]


def engagement_by_article(sessions: sessionmaker[Session], limit: int = 12) -> list[Engagement]:
    """Opens and clicks (distinct addresses) of the ``limit`` newest campaigns, oldest first."""
    wanted = (OPEN_EVENT, CLICK_EVENT)
    with sessions() as session:
        campaigns = session.execute(
            select(Campaign.id, Campaign.slug, Campaign.subject)
            .order_by(Campaign.created_at.desc(), Campaign.id.desc())
            .limit(limit)
        ).all()
        ids = [row.id for row in campaigns]
        counted = session.execute(
            select(
                WebhookEvent.campaign_id,
                WebhookEvent.event,
                func.count(func.distinct(WebhookEvent.email)),
            )
            .where(WebhookEvent.campaign_id.in_(ids), WebhookEvent.event.in_(wanted))
            .group_by(WebhookEvent.campaign_id, WebhookEvent.event)
        ).all()
    found = {(campaign_id, str(event)): int(n) for campaign_id, event, n in counted}
    return [
        Engagement(
            slug=row.slug,
            subject=row.subject,
            opened=found.get((row.id, OPEN_EVENT), 0),
            clicked=found.get((row.id, CLICK_EVENT), 0),
        )
        for row in reversed(campaigns)
    ]
