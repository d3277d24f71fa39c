"""The catch-up policy: what happens to a firing whose time passed while nothing ran it.

A firing missed by no more than ``[schedule] catch_up_grace`` (the scheduler
was down, the schedule paused, a long send ran over it) still runs, once: several
missed recurring firings are coalesced into one run at their latest time. A
firing missed by more is skipped, and the reason is logged. This module is the
one place that rule lives: APScheduler's job options for the recurring job are
derived from it (:func:`apscheduler_options`), the scheduler's log lines about
missed firings ask it (:func:`decide`, :func:`decide_missed`), and so do one-off
sends (:func:`pipeline.schedule.jobs.send_scheduled_due`), so what is logged is
what APScheduler does. The comparison is APScheduler's own: the time since the
firing against the grace in whole seconds (``misfire_grace_time`` is an int).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta


def grace_seconds(grace: timedelta) -> int:
    """The grace as APScheduler takes it (``misfire_grace_time``): whole seconds."""
    return int(grace.total_seconds())


def apscheduler_options(grace: timedelta) -> dict[str, object]:
    """APScheduler job options that carry out this policy for a recurring job.

    ``coalesce``: several missed firings run once; ``misfire_grace_time``: a
    firing later than the grace is skipped (APScheduler reports it as missed).
    """
    return {"coalesce": True, "misfire_grace_time": grace_seconds(grace)}


@dataclass(frozen=True)
class CatchUp:
    """The decision for a firing (or for several missed ones, coalesced into the latest)."""

    scheduled_for: datetime
    late: timedelta  # now - scheduled_for, exactly
    grace: timedelta  # the setting, as the owner wrote it
    runs: bool
    missed: int = 1  # how many firings this one decision covers

    @property
    def late_seconds(self) -> timedelta:
        """How late, to the whole second (for messages)."""
        return timedelta(seconds=int(self.late.total_seconds()))

    @property
    def reason(self) -> str:
        """Why it runs or is skipped, as a log line or a one-off's note says it."""
        if self.runs:
            return f"within the catch-up grace of {self.grace}"
        return f"missed by {self.late_seconds}, beyond the catch-up grace of {self.grace}"


def decide(scheduled_for: datetime, now: datetime, grace: timedelta) -> CatchUp:
    """Run once or skip the firing set for ``scheduled_for``, seen at ``now``.

    It runs while ``now - scheduled_for`` is at most the grace (in whole
    seconds, as APScheduler compares), so a firing exactly at the edge runs.
    """
    late = now - scheduled_for
    runs = late <= timedelta(seconds=grace_seconds(grace))
    return CatchUp(scheduled_for=scheduled_for, late=late, grace=grace, runs=runs)


def decide_missed(firings: Sequence[datetime], now: datetime, grace: timedelta) -> CatchUp | None:
    """Several missed firings (oldest first) coalesce: only the latest counts.

    It runs once if the latest is within the grace; otherwise all are skipped
    (the earlier ones are later still). None when nothing was missed.
    """
    if not firings:
        return None
    latest = decide(firings[-1], now, grace)
    return CatchUp(
        scheduled_for=latest.scheduled_for,
        late=latest.late,
        grace=grace,
        runs=latest.runs,
        missed=len(firings),
    )
