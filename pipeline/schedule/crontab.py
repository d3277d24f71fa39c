"""The clinic's recurring schedule: standard crontab in, firing times out.

APScheduler 3 numbers weekdays 0=Monday, while standard crontab says 0 (and 7)
is Sunday; :func:`cron_trigger` parses the standard meaning and hands
APScheduler weekday *names*, which mean the same thing to both. When both
day-of-month and day-of-week are restricted, crontab fires when *either*
matches; APScheduler ANDs its fields, so that case becomes an OrTrigger.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.combining import OrTrigger
from apscheduler.triggers.cron import CronTrigger

from pipeline.errors import ConfigError

_DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_MONTH_NAMES = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")


def _weekday_number(token: str) -> int:
    token = token.strip().lower()
    if token in _DAY_NAMES:
        return _DAY_NAMES.index(token)
    if token.isdigit() and 0 <= int(token) <= 7:
        return int(token) % 7  # 7 is Sunday too
    raise ConfigError(f"schedule.cron: bad day of week {token!r} (0-7 or sun..sat)")


def standard_weekdays(field: str) -> list[int]:
    """Expand a crontab day-of-week field into sorted day numbers, 0 = Sunday."""
    days: set[int] = set()
    for item in field.split(","):
        spec, _, step_text = item.partition("/")
        step = int(step_text) if step_text.isdigit() and int(step_text) > 0 else None
        if step_text and step is None:
            raise ConfigError(f"schedule.cron: bad step in day of week {item!r}")
        if spec == "*":
            first, last = 0, 6
        elif "-" in spec:
            start, _, end = spec.partition("-")
            first, last = _weekday_number(start), _weekday_number(end)
            if end.strip() == "7":
                last = 7  # "5-7" means Friday to Sunday
        else:
            first = last = _weekday_number(spec)
            if step is not None:
                last = 6
        if last < first:
            raise ConfigError(f"schedule.cron: day-of-week range {spec!r} runs backwards")
        days.update(day % 7 for day in range(first, last + 1, step or 1))
    return sorted(days)


def cron_trigger(cron: str, timezone: ZoneInfo) -> BaseTrigger:
    """An APScheduler trigger with standard crontab meaning, in the clinic's zone."""
    fields = cron.split()
    if len(fields) != 5:
        raise ConfigError(
            f"schedule.cron: {cron!r} must have 5 fields (minute hour day month weekday)"
        )
    minute, hour, day, month, weekday = fields
    month = month.lower()
    for index, name in enumerate(_MONTH_NAMES, start=1):
        month = month.replace(name, str(index))
    day_names = (
        "*" if weekday == "*" else ",".join(_DAY_NAMES[d] for d in standard_weekdays(weekday))
    )
    try:

        def make(day_of_month: str, day_of_week: str) -> CronTrigger:
            return CronTrigger(
                minute=minute,
                hour=hour,
                day=day_of_month,
                month=month,
                day_of_week=day_of_week,
                timezone=timezone,
            )

        if day != "*" and weekday != "*":
            return OrTrigger([make(day, "*"), make("*", day_names)])
        return make(day, day_names)
    except ValueError as exc:
        raise ConfigError(f"schedule.cron: {cron!r}: {exc}") from None


def next_firings(trigger: BaseTrigger, after: datetime, count: int) -> Iterator[datetime]:
    """The next ``count`` firing times strictly after ``after``."""
    previous: datetime | None = None
    moment = after + timedelta(microseconds=1)
    for _ in range(count):
        fire: datetime | None = trigger.get_next_fire_time(previous, moment)
        if fire is None:
            return
        yield fire
        previous = fire
        moment = fire + timedelta(seconds=1)
