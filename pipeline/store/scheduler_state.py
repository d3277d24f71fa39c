"""The scheduler's one state row: the pause switch and the leader's lease.

Only one scheduler may fire at a time. The one that may is the holder of a
lease in this row, taken and renewed with one guarded UPDATE (``WHERE leader =
me OR the lease has run out``): the database lets exactly one writer win, on
SQLite and PostgreSQL alike, with no advisory locks or dialect-specific SQL.
Lease times come from each scheduler's own clock, so machines sharing a
database need roughly synchronized clocks (NTP); a skew well under the lease
(45 s by default) does no harm.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from pipeline.store.db import rowcount
from pipeline.store.models import SchedulerState

#: The primary key of the single state row.
STATE_ID = 1


@dataclass(frozen=True)
class SchedulerStatus:
    """What the state row says: paused or not, and who holds the lease until when."""

    paused: bool = False
    paused_at: datetime | None = None
    leader: str | None = None
    lease_expires_at: datetime | None = None

    def leader_alive(self, now: datetime) -> bool:
        """Whether some scheduler holds an unexpired lease at ``now``."""
        return (
            self.leader is not None
            and self.lease_expires_at is not None
            and self.lease_expires_at > now
        )


class SchedulerStateStore:
    """Reads and changes the state row."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def ensure(self) -> None:
        """Create the state row if it is missing (safe when several processes race)."""
        with self._sessions() as session:
            if session.get(SchedulerState, STATE_ID) is not None:
                return
        try:
            with self._sessions.begin() as session:
                session.add(SchedulerState(id=STATE_ID, paused=False))
        except IntegrityError:
            pass  # another process created it first: just as good

    def status(self) -> SchedulerStatus:
        """The current state (defaults when the row was never written)."""
        with self._sessions() as session:
            row = session.get(SchedulerState, STATE_ID)
            if row is None:
                return SchedulerStatus()
            return SchedulerStatus(
                paused=row.paused,
                paused_at=row.paused_at,
                leader=row.leader,
                lease_expires_at=row.lease_expires_at,
            )

    def paused(self) -> bool:
        """Whether ``newsletter schedule pause`` is in force."""
        with self._sessions() as session:
            return bool(
                session.scalar(select(SchedulerState.paused).where(SchedulerState.id == STATE_ID))
            )

    def set_paused(self, paused: bool, now: datetime) -> bool:
        """Pause or resume; return whether this changed anything."""
        self.ensure()
        with self._sessions.begin() as session:
            result = session.execute(
                update(SchedulerState)
                .where(SchedulerState.id == STATE_ID, SchedulerState.paused != paused)
                .values(paused=paused, paused_at=now if paused else None)
            )
            return rowcount(result) > 0

    def acquire(self, holder: str, now: datetime, lease: timedelta) -> bool:
        """Take or renew the lease for ``holder``; False while another holds a live one."""
        for _ in range(2):
            with self._sessions.begin() as session:
                result = session.execute(
                    update(SchedulerState)
                    .where(
                        SchedulerState.id == STATE_ID,
                        or_(
                            SchedulerState.leader == holder,
                            SchedulerState.leader.is_(None),
                            SchedulerState.lease_expires_at.is_(None),
                            SchedulerState.lease_expires_at < now,
                        ),
                    )
                    .values(leader=holder, lease_expires_at=now + lease)
                )
                if rowcount(result) == 1:
                    return True
            if self.status().leader is not None:
                return False
            self.ensure()  # no row yet: create it and try once more
        return False

    def release(self, holder: str) -> None:
        """Give the lease up (on a clean stop), so a standby takes over at once."""
        with self._sessions.begin() as session:
            session.execute(
                update(SchedulerState)
                .where(SchedulerState.id == STATE_ID, SchedulerState.leader == holder)
                .values(leader=None, lease_expires_at=None)
            )
