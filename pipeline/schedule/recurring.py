"""The recurring job in APScheduler: installed or kept, and its catch-up logged.

The leader's APScheduler keeps the recurring job (``pipeline.schedule.jobs:send_due``
on :func:`pipeline.schedule.triggers.recurring_trigger`) in the project
database, so firings missed while no scheduler ran are caught up on start.
What happens to them is :mod:`pipeline.schedule.catch_up`'s policy: the job's
options are derived from it, and the log lines here ask it, so the log says
what APScheduler does (a firing within the grace runs once, several coalesce,
older ones are skipped).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from apscheduler.events import EVENT_JOB_MISSED, JobEvent
from apscheduler.job import Job
from apscheduler.schedulers.base import BaseScheduler

from pipeline.config import ScheduleSettings
from pipeline.schedule.catch_up import apscheduler_options, decide, decide_missed
from pipeline.schedule.triggers import recurring_trigger

log = logging.getLogger("pipeline.scheduler")

RECURRING_JOB = "recurring-send"
_FUNC = "pipeline.schedule.jobs:send_due"
#: Enough to count the firings of any crontab missed during a long outage.
_MAX_COUNTED_MISSES = 10_000


def _local(schedule: ScheduleSettings, moment: datetime | None) -> str:
    if moment is None:
        return "none"
    return moment.astimezone(schedule.tz).isoformat()


def install_recurring(
    scheduler: BaseScheduler, schedule: ScheduleSettings, config_path: str, jobstore: str
) -> None:
    """Keep the stored recurring job (its missed firings are caught up) unless it changed."""
    name = f"send the next due article ({schedule.cron}, {schedule.timezone})"
    options = apscheduler_options(schedule.catch_up_grace)
    stored: Job | None = scheduler.get_job(RECURRING_JOB, jobstore=jobstore)
    if (
        stored is not None
        and stored.name == name
        and stored.func_ref == _FUNC
        and list(stored.args) == [config_path]
        and stored.next_run_time is not None
    ):
        # The grace may have been edited since the job was stored.
        changed = {key: value for key, value in options.items() if getattr(stored, key) != value}
        if changed:
            stored.modify(**changed)
        report_downtime(stored, schedule)
        log.info("recurring schedule kept; next firing %s", _local(schedule, stored.next_run_time))
        return
    if stored is not None:
        log.info("schedule changed (was: %s); firings start afresh", stored.name)
    job: Job = scheduler.add_job(
        _FUNC,
        trigger=recurring_trigger(schedule),
        args=[config_path],
        id=RECURRING_JOB,
        name=name,
        jobstore=jobstore,
        max_instances=1,
        replace_existing=True,
        **options,
    )
    log.info("recurring schedule set; next firing %s", _local(schedule, job.next_run_time))


def report_downtime(stored: Job, schedule: ScheduleSettings) -> None:
    """Say what the catch-up policy will do with firings missed while no scheduler ran."""
    now = datetime.now(UTC)
    missed: list[datetime] = []
    fire: datetime | None = stored.next_run_time
    while fire is not None and fire <= now and len(missed) < _MAX_COUNTED_MISSES:
        missed.append(fire)
        fire = stored.trigger.get_next_fire_time(fire, now)
    catch_up = decide_missed(missed, now, schedule.catch_up_grace)
    if catch_up is None:
        return
    grace = schedule.catch_up_grace
    log.log(
        logging.INFO if catch_up.runs else logging.WARNING,
        "missed %d firing(s) while no scheduler ran (%s to %s): %s",
        catch_up.missed,
        _local(schedule, missed[0]),
        _local(schedule, catch_up.scheduled_for),
        (
            f"the latest is within the catch-up grace of {grace}: it runs once now"
            if catch_up.runs
            else f"all are beyond the catch-up grace of {grace}: skipped"
        ),
        extra={"missed": catch_up.missed, "catch_up": catch_up.runs},
    )


def log_recurring_event(event: JobEvent, schedule: ScheduleSettings) -> None:
    """Log a recurring firing as it is submitted (saying when it catches up) or missed."""
    if event.job_id != RECURRING_JOB:
        return
    grace = schedule.catch_up_grace
    if event.code == EVENT_JOB_MISSED:
        run_time: datetime = event.scheduled_run_time
        log.warning(
            "missed firing at %s: beyond the catch-up grace of %s; skipped, nothing sent",
            _local(schedule, run_time),
            grace,
            extra={"scheduled_for": _local(schedule, run_time)},
        )
        return
    times: list[datetime] = getattr(event, "scheduled_run_times", [])
    for run_time in times:
        catch_up = decide(run_time, datetime.now(UTC), grace)
        if not catch_up.runs:
            continue  # the executor reports it as missed
        note = f" (catching up, {catch_up.late_seconds} late)"
        log.info(
            "firing: recurring send scheduled for %s%s",
            _local(schedule, run_time),
            note if catch_up.late > timedelta(minutes=1) else "",
            extra={"scheduled_for": _local(schedule, run_time)},
        )
