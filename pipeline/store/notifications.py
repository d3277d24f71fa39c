"""What was sent to the owner, and the once-a-day rule that keeps a fault from becoming a storm.

A message to the owner is first *reserved*: one INSERT whose unique key is
(kind, subject, day). The database lets exactly one writer win, so a restart
the same day, or two schedulers at once, find the row and send nothing. A
message that could not be sent gives its reservation back (:meth:`release`),
so the next try may send it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, tzinfo

from sqlalchemy import delete, exists, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from pipeline.store.models import (
    Campaign,
    CampaignStatus,
    Delivery,
    Notification,
)
from pipeline.store.row_conditions import pending
from pipeline.store.snapshot import has_unclaimed


@dataclass(frozen=True)
class NotificationRecord:
    """One message sent to the owner."""

    id: int
    kind: str
    subject_key: str
    day: str
    sent_at: datetime
    recipients: tuple[str, ...]
    subject: str
    summary: str

    def as_dict(self, zone: tzinfo) -> dict[str, object]:
        """One item of ``notifications --json``."""
        return {
            "kind": self.kind,
            "about": self.subject_key,
            "sent_at": self.sent_at.astimezone(zone).isoformat(),
            "to": list(self.recipients),
            "subject": self.subject,
            "summary": self.summary,
        }


def _record(row: Notification) -> NotificationRecord:
    return NotificationRecord(
        id=row.id,
        kind=row.kind,
        subject_key=row.subject_key,
        day=row.day,
        sent_at=row.sent_at,
        recipients=tuple(part for part in row.recipients.split(",") if part),
        subject=row.subject,
        summary=row.summary,
    )


class NotificationStore:
    """The ``notifications`` table."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def reserve(
        self,
        kind: str,
        subject_key: str,
        day: str,
        now: datetime,
        *,
        recipients: tuple[str, ...],
        subject: str,
        summary: str,
    ) -> int | None:
        """Claim (kind, subject, day); its row id, or None when it was already sent."""
        try:
            with self._sessions.begin() as session:
                row = Notification(
                    kind=kind,
                    subject_key=subject_key[:300],
                    day=day,
                    sent_at=now,
                    recipients=",".join(recipients),
                    subject=subject,
                    summary=summary,
                )
                session.add(row)
                session.flush()
                return row.id
        except IntegrityError:
            return None

    def release(self, notification_id: int) -> None:
        """Give a reservation back (its message could not be sent)."""
        with self._sessions.begin() as session:
            session.execute(delete(Notification).where(Notification.id == notification_id))

    def mark_sent(self, notification_id: int, recipients: tuple[str, ...], now: datetime) -> None:
        """Record who it reached (some addresses may have been refused) and when."""
        with self._sessions.begin() as session:
            session.execute(
                update(Notification)
                .where(Notification.id == notification_id)
                .values(recipients=",".join(recipients), sent_at=now)
            )

    def recent(self, limit: int | None = None) -> list[NotificationRecord]:
        """Messages sent to the owner, newest first."""
        query = select(Notification).order_by(Notification.sent_at.desc(), Notification.id.desc())
        if limit is not None:
            query = query.limit(limit)
        with self._sessions() as session:
            return [_record(row) for row in session.scalars(query)]


def stalled_campaigns(
    sessions: sessionmaker[Session], started_before: datetime
) -> list[tuple[str, datetime]]:
    """Running campaigns started before ``started_before`` that still have people to send to.

    (slug, started_at), oldest first: what the owner is told about an hour on.
    """
    # Pending rows, or people no claim has reached yet (pipeline.store.snapshot).
    waiting = or_(
        exists().where(Delivery.campaign_id == Campaign.id, pending()),
        has_unclaimed(),
    )
    with sessions() as session:
        rows = session.execute(
            select(Campaign.slug, Campaign.started_at)
            .where(
                Campaign.status == CampaignStatus.RUNNING,
                Campaign.started_at.is_not(None),
                Campaign.started_at <= started_before,
                waiting,
            )
            .order_by(Campaign.started_at)
        ).all()
    return [(slug, started) for slug, started in rows if started is not None]
