"""Build the APScheduler scheduler that fires the recurring schedule."""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler

from .config import Settings
from .schedule import cron_trigger

log = logging.getLogger("pipeline.scheduler")

#: A firing missed by less than this (downtime, a slow start) still runs once.
MISFIRE_GRACE = timedelta(hours=6)


def build_scheduler(settings: Settings, config_path: Path, *, blocking: bool) -> BaseScheduler:
    """One scheduler with the recurring "send what is due" job."""
    schedule = settings.schedule
    scheduler: BaseScheduler = (
        BlockingScheduler(timezone=schedule.tz)
        if blocking
        else BackgroundScheduler(timezone=schedule.tz)
    )
    scheduler.add_job(
        "pipeline.jobs:send_due",
        trigger=cron_trigger(schedule.cron, schedule.tz),
        args=[str(config_path)],
        id="recurring-send",
        name=f"send the next due article ({schedule.cron}, {schedule.timezone})",
        coalesce=True,
        max_instances=1,
        misfire_grace_time=int(MISFIRE_GRACE.total_seconds()),
        replace_existing=True,
    )
    log.info("schedule: %s in %s", schedule.cron, schedule.timezone)
    return scheduler
