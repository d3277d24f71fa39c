"""The scheduler's daily catch-up pass, at the clinic's send time (``[schedule] cron`` hh:mm).

The same :func:`~pipeline.schedule.catch_up_track.run_pass` as ``newsletter
catch-up --yes``; each campaign goes through the scheduler's ``_send`` (its
log lines, the SIGTERM stop, one run per campaign per process). While paused
nothing goes. The job lives in the scheduler's memory store: a pass missed
while no scheduler ran is not replayed late, and the next day's pass simply
picks everyone up (nobody is skipped, their part comes a day later).
"""

from __future__ import annotations

from datetime import datetime

from apscheduler.triggers.cron import CronTrigger

from pipeline.config import ScheduleSettings
from pipeline.content.catch_up import send_time
from pipeline.errors import PipelineError
from pipeline.schedule.catch_up_track import PassReport, run_pass
from pipeline.schedule.jobs import _open, _send, _turned_away, log
from pipeline.store.scheduler_state import SchedulerStateStore

CATCH_UP_JOB = "catch-up-track"


#: Seconds after the send time the pass runs: behind the live firing of the same
#: minute (fired at :00), which the scheduler's single worker then runs first. So
#: a live issue, even a standalone one the pass knows nothing of, is planned
#: before the pass looks, and the pass leaves its readers for another day.
PASS_DELAY_SECONDS = 30


def catch_up_trigger(schedule: ScheduleSettings) -> CronTrigger:
    """Every day at the send time (:data:`PASS_DELAY_SECONDS` on), in the clinic's timezone."""
    at = send_time(schedule)
    return CronTrigger(
        hour=at.hour, minute=at.minute, second=PASS_DELAY_SECONDS, timezone=schedule.tz
    )


def catch_up_due(config_path: str, *, now: datetime | None = None) -> PassReport | None:
    """Today's catch-up pass (None while paused or stopping)."""
    if _turned_away("catch-up pass"):
        return None
    newsletter = _open(config_path, now)
    try:
        if SchedulerStateStore(newsletter.sessions).paused():
            log.warning("schedule paused: no catch-up sends today (newsletter schedule resume)")
            return None
        try:
            report = run_pass(
                newsletter, send=lambda slug: _send(newsletter, slug, "catch-up track")
            )
        except PipelineError as exc:
            log.error("catch-up pass: not run: %s", exc)
            return None
        log.info(
            "catch-up pass: %d email(s) planned over %d part(s)",
            report.people,
            len(report.parts),
            extra={"catch_up_emails": report.people},
        )
        return report
    finally:
        newsletter.close()
