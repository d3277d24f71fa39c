"""The leader's in-memory jobs: the polls, the daily catch-up pass, the resume on promotion.

They are rebuilt on every start and never stored (the database is the source
of truth for what they act on: ``scheduled_sends``, ``campaign_stops``, the
ledger), unlike the recurring job, which lives in the project database
(:mod:`pipeline.schedule.recurring`). One table, :func:`local_jobs`, says
what runs how often; :func:`install_local_jobs` adds them all the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger

from pipeline.config import Settings
from pipeline.schedule.catch_up_job import CATCH_UP_JOB, catch_up_trigger
from pipeline.schedule.welcome_job import WELCOME_JOB

#: The job store of these jobs (the scheduler's MemoryJobStore).
LOCAL_STORE = "local"
ONE_OFF_JOB = "one-off-sends"
RESUME_JOB = "resume-interrupted"
RETRY_JOB = "retry-stopped"
BOUNCES_JOB = "read-bounce-mail"
OWNER_JOB = "owner-watch"
ONE_OFF_NAME = "fire due one-off sends"
RETRY_NAME = "retry stopped campaigns"
#: How often the owner job looks (heads-up, empty queue, stalled campaigns).
OWNER_WATCH_SECONDS = 300
#: The resume job runs on becoming leader and on resume; this only keeps it alive.
#: Not a one-shot job: APScheduler 3.11 removes those after they run, and that
#: removal races a shutdown (JobLookupError in its thread).
_RESUME_INTERVAL_DAYS = 365


@dataclass(frozen=True)
class LocalJob:
    """One in-memory job: what it calls, when, and whether it also runs at once."""

    func: str
    job_id: str
    name: str
    #: An interval in seconds, or a trigger of its own (the daily catch-up pass).
    every: float | BaseTrigger
    run_now: bool = False


#: Campaigns a stop or crash left half-sent: on becoming leader, and again on resume.
RESUME_INTERRUPTED = LocalJob(
    "pipeline.schedule.jobs:resume_interrupted",
    RESUME_JOB,
    "resume interrupted campaigns",
    _RESUME_INTERVAL_DAYS * 86_400,
    run_now=True,
)


def local_jobs(settings: Settings, poll_every: float) -> list[LocalJob]:
    """Every in-memory job of a leader with these settings."""
    listed = [
        # Due one-off sends (the scheduled_sends table decides), every poll.
        LocalJob(
            "pipeline.schedule.jobs:send_scheduled_due",
            ONE_OFF_JOB,
            ONE_OFF_NAME,
            poll_every,
            run_now=True,
        ),
        # Late joiners' parts, daily at the send time (pipeline.schedule.catch_up_job).
        LocalJob(
            "pipeline.schedule.catch_up_job:catch_up_due",
            CATCH_UP_JOB,
            "catch-up track",
            catch_up_trigger(settings.schedule),
        ),
        # Same cadence as the one-off poll: a due retry starts within seconds
        # of its time (a minute after the stop, at first). The backoff itself
        # lives in the database, so a restart neither forgets nor hurries it.
        LocalJob("pipeline.schedule.jobs:retry_stopped", RETRY_JOB, RETRY_NAME, poll_every),
        RESUME_INTERRUPTED,
        # The heads-up, the empty-queue and stalled-campaign alerts: now, then every
        # few minutes (each message is sent at most once a day, whatever the cadence).
        LocalJob(
            "pipeline.owner.alerts:watch",
            OWNER_JOB,
            "tell the owner",
            OWNER_WATCH_SECONDS,
            run_now=True,
        ),
        # New subscribers' welcome emails (a web sign-up only enrols them).
        LocalJob(
            "pipeline.schedule.welcome_job:send_welcomes_due",
            WELCOME_JOB,
            "welcome emails",
            poll_every,
        ),
    ]
    if settings.bounces.enabled:
        # Bounce mail ([bounces]): read every few minutes, by the leader only.
        listed.append(
            LocalJob(
                "pipeline.bounces.job:read_bounce_mail",
                BOUNCES_JOB,
                "read bounce mail",
                settings.bounces.every_seconds,
                run_now=True,
            )
        )
    return listed


def install_local_jobs(
    scheduler: BackgroundScheduler, jobs: list[LocalJob], config_path: str
) -> None:
    """Add the jobs to the scheduler's memory store (each job opens the folder itself)."""
    for job in jobs:
        when: dict[str, Any] = (
            {"trigger": job.every}
            if isinstance(job.every, BaseTrigger)
            # Polls never count as missed: the next poll simply does the work.
            else {"trigger": "interval", "seconds": job.every, "misfire_grace_time": None}
        )
        if job.run_now:
            when["next_run_time"] = datetime.now(UTC)
        scheduler.add_job(
            job.func,
            args=[config_path],
            id=job.job_id,
            name=job.name,
            jobstore=LOCAL_STORE,
            replace_existing=True,
            **when,
        )
