"""The trigger the scheduler fires on: the clinic's cron, once per local time.

APScheduler's CronTrigger works in local wall-clock time. When clocks go
forward, a time inside the gap (02:30 on the night Sydney starts daylight
saving) still fires once, at the same instant an hour later on the new clock,
so nothing is skipped. When clocks go back, the hour between 02:00 and 03:00
happens twice and a CronTrigger fires in both, which would send two issues in
one night. :class:`OncePerLocalTime` drops the second one.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo

from apscheduler.triggers.base import BaseTrigger

from pipeline.config import ScheduleSettings
from pipeline.schedule.crontab import cron_trigger


def _wall(moment: datetime, zone: tzinfo) -> datetime:
    return moment.astimezone(zone).replace(tzinfo=None, fold=0)


class OncePerLocalTime(BaseTrigger):  # type: ignore[misc]  # apscheduler is untyped
    """Wraps a trigger so that a local time repeated by a DST change fires only once."""

    def __init__(self, inner: BaseTrigger, timezone: tzinfo) -> None:
        self.inner = inner
        self.timezone = timezone

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        """The inner trigger's next time, never a repeat of ``previous_fire_time``'s wall time.

        Asked for the time after the second 02:30 of a fall-back night,
        APScheduler 3.11's CronTrigger answers that same 02:30 again (and its
        scheduler would loop on it), so after a repeat the search restarts
        from just past it, without ``previous_fire_time``.
        """
        # Compare and step in UTC: aware datetimes sharing a zone compare by wall
        # time, which cannot tell the two 02:30s of a fall-back night apart.
        fire: datetime | None = self.inner.get_next_fire_time(previous_fire_time, now)
        while (
            fire is not None
            and previous_fire_time is not None
            and (
                fire.astimezone(UTC) <= previous_fire_time.astimezone(UTC)
                or _wall(fire, self.timezone) == _wall(previous_fire_time, self.timezone)
            )
        ):
            after = max(fire.astimezone(UTC), now.astimezone(UTC)) + timedelta(seconds=1)
            fire = self.inner.get_next_fire_time(None, after)
        return fire

    def __str__(self) -> str:
        return str(self.inner)

    def __repr__(self) -> str:
        return f"<OncePerLocalTime {self.inner!r}>"


def recurring_trigger(schedule: ScheduleSettings) -> BaseTrigger:
    """The recurring schedule as the scheduler fires it (and as planning predicts it)."""
    return OncePerLocalTime(cron_trigger(schedule.cron, schedule.tz), schedule.tz)
