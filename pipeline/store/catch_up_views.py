"""The catch-up track as the owner sees it: one person's rows, their next part, the coming week.

Read-only views for ``subscribers show`` (and the dashboard's person page),
``schedule list`` and ``status``. Who is due which part on which day is
never worked out again here: :func:`due_part` and :func:`plan_days` ask the
daily pass's own predicate (:func:`pipeline.store.catch_up.due_for_part`),
so what the owner is shown cannot drift from what the pass will do.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from pipeline.store.catch_up import Day, SeriesTrack, due_for_part, insert_day, lock_pass
from pipeline.store.models import Campaign, Delivery, DeliveryStatus, Subscriber


@dataclass(frozen=True)
class DeliveryView:
    """One ledger row of one person: which campaign (article), its state, live or caught up."""

    campaign_id: int
    slug: str
    subject: str
    status: DeliveryStatus
    sent_at: datetime | None
    #: The send slot a catch-up row was planned for; None for a live row.
    catch_up_at: datetime | None


def deliveries_of(sessions: sessionmaker[Session], subscriber_id: int) -> list[DeliveryView]:
    """Every ledger row of the subscriber, in any state, oldest first.

    "Oldest" is by when it went (or is planned to go): the send time, else a
    catch-up row's slot, else when its campaign was planned.
    """
    when = func.coalesce(Delivery.sent_at, Delivery.catch_up_at, Campaign.created_at)
    with sessions() as session:
        rows = session.execute(
            select(
                Delivery.campaign_id,
                Campaign.slug,
                Campaign.subject,
                Delivery.status,
                Delivery.sent_at,
                Delivery.catch_up_at,
            )
            .join(Campaign, Campaign.id == Delivery.campaign_id)
            .where(Delivery.subscriber_id == subscriber_id)
            .order_by(when, Delivery.id)
        ).all()
    return [
        DeliveryView(
            campaign_id=cid,
            slug=slug,
            subject=subject,
            status=DeliveryStatus(status),
            sent_at=sent_at,
            catch_up_at=catch_up_at,
        )
        for cid, slug, subject, status, sent_at, catch_up_at in rows
    ]


def due_part(
    sessions: sessionmaker[Session], track: SeriesTrack, subscriber_id: int, day: Day
) -> int | None:
    """The campaign (part) a pass on ``day`` would give this subscriber, or None.

    One small query per sent part, each the pass's own condition narrowed to
    one person (the pass gives a person at most one part of a series a day).
    Nothing is written: it answers for the rows as they stand now.
    """
    with sessions() as session:
        for index, campaign_id in enumerate(track.campaign_ids):
            due = session.scalar(
                select(Subscriber.id).where(
                    Subscriber.id == subscriber_id, due_for_part(track, index, day)
                )
            )
            if due is not None:
                return campaign_id
    return None


@dataclass(frozen=True)
class DueSends:
    """How many people a coming pass would give one part (campaign), at its send slot."""

    slot: datetime
    campaign_id: int
    people: int


def plan_days(
    sessions: sessionmaker[Session], tracks: Sequence[SeriesTrack], days: Sequence[Day]
) -> list[DueSends]:
    """The catch-up sends the passes of ``days`` would plan, as if no live issue went out.

    All the days are planned in ONE transaction that is always rolled back:
    day 2 sees the rows day 1 inserted (so the spacing, the limit and "one
    email a day" apply across the week exactly as the real passes apply
    them), and nothing is ever stored. Not simulated: live campaigns still to
    come (a live part takes its readers off nobody's track, but a live issue
    on a day can move someone's catch-up send one day on), people who join or
    leave meanwhile, and sends that fail. Held under the pass's lock
    (PostgreSQL) or SQLite's single writer, like a dry run of the pass.
    """
    with sessions() as session:
        connection = session.connection()
        try:
            lock_pass(connection)
            before = int(session.scalar(select(func.coalesce(func.max(Delivery.id), 0))) or 0)
            for day in days:
                insert_day(connection, tracks, day)
            counted = connection.execute(
                select(Delivery.catch_up_at, Delivery.campaign_id, func.count())
                .where(Delivery.id > before)
                .group_by(Delivery.catch_up_at, Delivery.campaign_id)
                .order_by(Delivery.catch_up_at, Delivery.campaign_id)
            ).all()
        finally:
            session.rollback()
    # The column reads back in UTC; give each its day's slot (an equal instant) in local time.
    local = {day.slot: day.slot for day in days}
    return [
        DueSends(slot=local.get(slot, slot), campaign_id=cid, people=int(n))
        for slot, cid, n in counted
        if slot is not None
    ]
