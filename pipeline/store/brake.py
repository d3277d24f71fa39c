"""The SQL of the bounce brake: one campaign's sends, bounces and complaints, and its baseline.

The rule itself is :mod:`pipeline.sending.brake`. A row counts as a send once
it ended (``sent``, ``failed``, ``uncertain``); its subscriber as a bounce or
a complaint when they are now ``bounced`` or ``complained``. Everyone on the
list was active when the campaign was planned (or added), so a subscriber in
one of those states among this campaign's sends got there since: by this
campaign's SMTP reply, a webhook event or a delivery status notification.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, Select, and_, bindparam, exists, func, select
from sqlalchemy.orm import Session, sessionmaker

from pipeline.store.models import (
    CampaignBrake,
    CampaignStop,
    Delivery,
    DeliveryStatus,
    Subscriber,
    SubscriberStatus,
    WaitingFor,
)
from pipeline.store.snapshot import unclaimed as unclaimed_people

#: How a stop by the brake begins its reason (``pipeline.sending.brake.BrakeTrip.reason``).
BRAKE_REASON = "bounce brake:"

_ENDED = (DeliveryStatus.SENT, DeliveryStatus.FAILED, DeliveryStatus.UNCERTAIN)


def brake_counts(session: Session, campaign_id: int) -> tuple[int, int, int, int]:
    """(sends, bounced, complained, pending) of one campaign, in one pass over its rows."""
    ended = Delivery.status.in_(_ENDED)
    row = session.execute(
        select(
            func.count().filter(ended),
            func.count().filter(and_(ended, Subscriber.status == SubscriberStatus.BOUNCED)),
            func.count().filter(and_(ended, Subscriber.status == SubscriberStatus.COMPLAINED)),
            func.count().filter(Delivery.status == DeliveryStatus.PENDING),
        )
        .select_from(Delivery)
        .outerjoin(Subscriber, Subscriber.id == Delivery.subscriber_id)
        .where(Delivery.campaign_id == campaign_id)
    ).one()
    # People no claim has reached yet are pending too (pipeline.store.snapshot).
    unclaimed = unclaimed_people(session, [campaign_id]).get(campaign_id, 0)
    return int(row[0]), int(row[1]), int(row[2]), int(row[3]) + unclaimed


def _troubles_statement() -> Select[int, int]:
    """(bounced, complained) among one campaign's sends: cheap when there are few.

    Starts from the subscribers now bounced or complained
    (``ix_subscribers_status_id``) and looks each one's row up by the
    campaign's unique key, so a healthy list costs an empty index range
    instead of a pass over every row of the campaign. Built once: the brake
    asks after every batch, and building it each time cost more than running it.
    """
    troubled = (SubscriberStatus.BOUNCED, SubscriberStatus.COMPLAINED)
    # A correlated EXISTS, not a join: given a join, SQLite's planner walks
    # every row of the campaign (a fifth of a send's time, measured).
    sent_to = exists().where(
        Delivery.campaign_id == bindparam("campaign", type_=Integer),
        Delivery.subscriber_id == Subscriber.id,
        Delivery.status.in_(_ENDED),
    )
    return select(
        func.count().filter(Subscriber.status == SubscriberStatus.BOUNCED),
        func.count().filter(Subscriber.status == SubscriberStatus.COMPLAINED),
    ).where(Subscriber.status.in_(troubled), sent_to)


_TROUBLES = _troubles_statement()


def brake_troubles(session: Session, campaign_id: int) -> tuple[int, int]:
    """(bounced, complained) among one campaign's sends (:func:`_troubles_statement`)."""
    row = session.connection().execute(_TROUBLES, {"campaign": campaign_id}).one()
    return int(row[0]), int(row[1])


class BrakeStore:
    """Counts for the brake, and the ``campaign_brakes`` baselines."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def counts(self, campaign_id: int) -> tuple[int, int, int, int]:
        """(sends, bounced, complained, pending) now."""
        with self._sessions() as session:
            return brake_counts(session, campaign_id)

    def troubles(self, campaign_id: int) -> tuple[int, int]:
        """(bounced, complained) now, without counting the sends."""
        with self._sessions() as session:
            return brake_troubles(session, campaign_id)

    def baseline(self, campaign_id: int) -> tuple[int, int, int] | None:
        """(sends, bounced, complained) when the owner last resumed it after the brake."""
        with self._sessions() as session:
            row = session.get(CampaignBrake, campaign_id)
            return (row.sends, row.bounced, row.complained) if row is not None else None

    def release(self, now: datetime, campaign_id: int | None = None) -> int:
        """The owner answers the brake: its numbers now become the baseline; how many.

        Only campaigns the brake stopped (waiting for the owner with a brake
        reason): one campaign (``send SLUG --yes``), or all (``schedule resume``).
        """
        with self._sessions.begin() as session:
            query = select(CampaignStop.campaign_id).where(
                CampaignStop.waiting_for == WaitingFor.OWNER,
                CampaignStop.reason.startswith(BRAKE_REASON),
            )
            if campaign_id is not None:
                query = query.where(CampaignStop.campaign_id == campaign_id)
            braked = list(session.scalars(query))
            for braked_id in braked:
                sends, bounced, complained, _ = brake_counts(session, braked_id)
                row = session.get(CampaignBrake, braked_id)
                if row is None:
                    row = CampaignBrake(campaign_id=braked_id)
                    session.add(row)
                row.sends, row.bounced, row.complained = sends, bounced, complained
                row.released_at = now
            return len(braked)
