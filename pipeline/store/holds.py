"""Recurring firings the owner held from a heads-up's "Hold this send" page.

A hold names one firing by its time. The recurring job asks :meth:`HoldStore.held`
at firing time and sends nothing while a hold covers it; ``schedule resume``
releases every hold. Holding is idempotent (one row per firing time).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from pipeline.store.db import rowcount
from pipeline.store.models import HeldFiring


@dataclass(frozen=True)
class Hold:
    """One held firing."""

    firing_at: datetime
    slug: str | None
    held_at: datetime


def _hold(row: HeldFiring) -> Hold:
    return Hold(firing_at=row.firing_at, slug=row.slug, held_at=row.held_at)


class HoldStore:
    """The ``held_firings`` table."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def hold(self, firing_at: datetime, slug: str | None, now: datetime) -> bool:
        """Hold the firing at ``firing_at``; False when it already was held."""
        for _ in range(2):
            try:
                with self._sessions.begin() as session:
                    row = session.scalar(
                        select(HeldFiring).where(HeldFiring.firing_at == firing_at)
                    )
                    if row is None:
                        session.add(HeldFiring(firing_at=firing_at, slug=slug, held_at=now))
                        return True
                    if row.released_at is None:
                        return False
                    row.released_at, row.held_at, row.slug = None, now, slug
                    return True
            except IntegrityError:
                continue  # held by another request at the same moment: look again
        return False

    def held(self, start: datetime, end: datetime) -> Hold | None:
        """A hold in force on a firing between ``start`` and ``end`` (inclusive)."""
        with self._sessions() as session:
            row = session.scalar(
                select(HeldFiring)
                .where(
                    HeldFiring.released_at.is_(None),
                    HeldFiring.firing_at >= start,
                    HeldFiring.firing_at <= end,
                )
                .order_by(HeldFiring.firing_at)
                .limit(1)
            )
            return _hold(row) if row is not None else None

    def in_force(self) -> list[Hold]:
        """Every hold not released yet, earliest firing first."""
        with self._sessions() as session:
            rows = session.scalars(
                select(HeldFiring)
                .where(HeldFiring.released_at.is_(None))
                .order_by(HeldFiring.firing_at)
            )
            return [_hold(row) for row in rows]

    def release(self, firing_at: datetime, now: datetime) -> bool:
        """Release the hold on one firing (the dashboard's button); False when none was in force."""
        with self._sessions.begin() as session:
            result = session.execute(
                update(HeldFiring)
                .where(HeldFiring.firing_at == firing_at, HeldFiring.released_at.is_(None))
                .values(released_at=now)
            )
            return rowcount(result) > 0

    def release_all(self, now: datetime) -> int:
        """Release every hold (``schedule resume``); how many there were."""
        with self._sessions.begin() as session:
            result = session.execute(
                update(HeldFiring).where(HeldFiring.released_at.is_(None)).values(released_at=now)
            )
            return rowcount(result)
