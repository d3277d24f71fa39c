"""One-off sends (``newsletter schedule SLUG --at ...``): the table is the source of truth.

The running scheduler polls it, so a send set from another process is picked
up within seconds, and a cancel or pause is seen at firing time. Firing is one
guarded UPDATE (pending -> fired), so two processes can never both fire the
same one-off, and a cancel racing a firing has exactly one winner.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from pipeline.errors import PipelineError
from pipeline.store.db import rowcount
from pipeline.store.holds import Hold, HoldStore
from pipeline.store.models import ScheduledSend, ScheduledSendStatus
from pipeline.store.scheduler_state import SchedulerStateStore


@dataclass(frozen=True)
class OneOffSend:
    """One scheduled one-off send."""

    id: int
    slug: str
    at: datetime
    status: ScheduledSendStatus
    created_at: datetime
    fired_at: datetime | None = None
    note: str | None = None


@dataclass(frozen=True)
class SchedulePlan:
    """What planning needs from the store: the pause switch, the pending one-offs and
    the recurring firings the owner held (they send nothing)."""

    paused: bool
    one_offs: dict[str, datetime]
    held_firings: frozenset[datetime] = frozenset()


def _record(row: ScheduledSend) -> OneOffSend:
    return OneOffSend(
        id=row.id,
        slug=row.slug,
        at=row.at,
        status=row.status,
        created_at=row.created_at,
        fired_at=row.fired_at,
        note=row.note,
    )


class OneOffStore:
    """The ``scheduled_sends`` table."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def schedule(self, slug: str, at: datetime, now: datetime) -> OneOffSend:
        """Set (or move) the one-off send of ``slug`` to ``at``.

        A cancelled or missed one-off is set again; one that already fired is
        an error (the article went out: nothing is ever sent twice).
        """
        for _ in range(2):
            with self._sessions.begin() as session:
                row = session.scalar(select(ScheduledSend).where(ScheduledSend.slug == slug))
                if row is not None and row.status is ScheduledSendStatus.FIRED:
                    raise PipelineError(
                        f"{slug}: its one-off send already fired"
                        f" ({row.fired_at.isoformat() if row.fired_at else 'earlier'})"
                    )
                if row is None:
                    row = ScheduledSend(slug=slug, created_at=now)
                    session.add(row)
                row.at = at
                row.status = ScheduledSendStatus.PENDING
                row.note = None
                try:
                    session.flush()
                except IntegrityError:
                    continue  # another process added the same slug: update theirs
                return _record(row)
        raise PipelineError(f"{slug}: could not schedule (changed concurrently); try again")

    def cancel(self, slug: str) -> bool:
        """Cancel a pending one-off; False when there was none pending."""
        with self._sessions.begin() as session:
            result = session.execute(
                update(ScheduledSend)
                .where(
                    ScheduledSend.slug == slug,
                    ScheduledSend.status == ScheduledSendStatus.PENDING,
                )
                .values(status=ScheduledSendStatus.CANCELLED)
            )
            return rowcount(result) > 0

    def all(self) -> list[OneOffSend]:
        """Every one-off, soonest first."""
        with self._sessions() as session:
            rows = session.scalars(select(ScheduledSend).order_by(ScheduledSend.at))
            return [_record(row) for row in rows]

    def pending(self) -> list[OneOffSend]:
        """One-offs still to fire, soonest first."""
        return [one for one in self.all() if one.status is ScheduledSendStatus.PENDING]

    def due(self, now: datetime) -> list[OneOffSend]:
        """Pending one-offs whose time has come, soonest first."""
        with self._sessions() as session:
            rows = session.scalars(
                select(ScheduledSend)
                .where(
                    ScheduledSend.status == ScheduledSendStatus.PENDING,
                    ScheduledSend.at <= now,
                )
                .order_by(ScheduledSend.at)
            )
            return [_record(row) for row in rows]

    def _settle(
        self, one_id: int, status: ScheduledSendStatus, now: datetime, note: str | None
    ) -> bool:
        with self._sessions.begin() as session:
            result = session.execute(
                update(ScheduledSend)
                .where(
                    ScheduledSend.id == one_id,
                    ScheduledSend.status == ScheduledSendStatus.PENDING,
                )
                .values(status=status, fired_at=now, note=note)
            )
            return rowcount(result) > 0

    def claim(self, one_id: int, now: datetime) -> bool:
        """Pending -> fired; True for exactly one caller (a cancel or another firer loses)."""
        return self._settle(one_id, ScheduledSendStatus.FIRED, now, None)

    def mark_missed(self, one_id: int, now: datetime, note: str) -> bool:
        """Pending -> missed (its time passed beyond the catch-up grace)."""
        return self._settle(one_id, ScheduledSendStatus.MISSED, now, note)

    def add_note(self, one_id: int, note: str) -> None:
        """Record what happened when a fired one-off ran (an error, "already sent")."""
        with self._sessions.begin() as session:
            session.execute(
                update(ScheduledSend).where(ScheduledSend.id == one_id).values(note=note)
            )


def recurring_holds(
    sessions: sessionmaker[Session], pending: list[OneOffSend] | None = None
) -> list[Hold]:
    """Holds in force on recurring firings, earliest first.

    A hold on a pending one-off (its time and slug) holds that one-off only, so
    it is left out. ``pending``: the pending one-offs, when the caller has them.
    """
    pending = OneOffStore(sessions).pending() if pending is None else pending
    keys = {(one.at, one.slug) for one in pending}
    return [h for h in HoldStore(sessions).in_force() if (h.firing_at, h.slug) not in keys]


def schedule_plan(sessions: sessionmaker[Session]) -> SchedulePlan:
    """The pause switch, the pending one-offs (slug -> time) and the held recurring
    firings, for planned dates."""
    paused = SchedulerStateStore(sessions).paused()
    pending = OneOffStore(sessions).pending()
    one_offs = {one.slug: one.at for one in pending}
    held = frozenset(hold.firing_at for hold in recurring_holds(sessions, pending))
    return SchedulePlan(paused=paused, one_offs=one_offs, held_firings=held)
