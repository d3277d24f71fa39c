"""The scheduler service: one leader fires the clinic's schedule, kept in the database.

Any number of :class:`SchedulerService` processes may run against one
database; the one holding the lease in ``scheduler_state`` (see
:mod:`pipeline.store.scheduler_state` and :mod:`pipeline.schedule.leadership`)
is the leader and the only one running APScheduler. The others wait and take
over within a lease (60 s) if the leader dies. The leader's APScheduler keeps
the recurring job in the project database (``SQLAlchemyJobStore``, job
``pipeline.schedule.jobs:send_due``, see :mod:`pipeline.schedule.recurring`), so a
firing missed while no scheduler ran is caught up once on start if it is
within ``[schedule] catch_up_grace``, several are coalesced into one, and
older ones are skipped and logged (the policy: :mod:`pipeline.schedule.catch_up`).
The other jobs live only in memory (:mod:`pipeline.schedule.local_jobs`):
a poll that fires due one-off sends (the ``scheduled_sends`` table is their
source of truth, so the CLI in another process needs no channel to the
scheduler), a poll that retries campaigns a run left with rows pending once
their backoff is over (:mod:`pipeline.store.stops`), the daily catch-up pass,
the owner's watch, welcome emails, bounce mail and, on becoming leader, a
resume of campaigns a stop or crash left half-sent.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from apscheduler.events import EVENT_JOB_MISSED, EVENT_JOB_SUBMITTED, JobEvent
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.job import Job
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler

from pipeline.config import Settings
from pipeline.schedule import jobs
from pipeline.schedule.catch_up import apscheduler_options
from pipeline.schedule.leadership import Leadership, Timing, scheduler_identity
from pipeline.schedule.local_jobs import (
    LOCAL_STORE,
    ONE_OFF_NAME,
    RESUME_INTERRUPTED,
    RETRY_NAME,
    install_local_jobs,
    local_jobs,
)
from pipeline.schedule.recurring import RECURRING_JOB, install_recurring, log_recurring_event
from pipeline.store.db import make_engine, make_sessionmaker, migrate
from pipeline.store.scheduler_state import SchedulerStateStore

__all__ = ["RECURRING_JOB", "SchedulerService", "Timing", "scheduler_identity"]

log = logging.getLogger("pipeline.scheduler")

#: Jobs kept in the project database (APScheduler's own table, ``apscheduler_jobs``).
_PERSISTENT = "default"


class _QuietApscheduler(logging.Filter):
    """Drops APScheduler lines our own log says better or that are expected.

    Missed firings are reported by :mod:`pipeline.schedule.recurring` with the
    grace that applied; the one-off poll overlapping a long send is normal.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        polls = ONE_OFF_NAME in text or RETRY_NAME in text
        overlap = polls and "maximum number of running instances" in text
        return not (overlap or text.startswith("Run time of job"))


for _name in ("apscheduler.scheduler", "apscheduler.executors.default"):
    logging.getLogger(_name).addFilter(_QuietApscheduler())


def _utc_now() -> datetime:
    return datetime.now(UTC)


class SchedulerService:
    """The long-running scheduler: waits for the lease, then fires the schedule.

    ``start()`` returns at once (the work happens in background threads);
    ``stop()`` stops taking firings, lets the batch in hand finish and gives
    the lease up. ``scheduler.py`` runs one until SIGTERM; ``newsletter demo``
    runs one beside the web app.
    """

    def __init__(
        self,
        settings: Settings,
        config_path: Path,
        *,
        timing: Timing | None = None,
        clock: Callable[[], datetime] = _utc_now,
        identity: str | None = None,
    ) -> None:
        self.settings = settings
        self.config_path = str(config_path.resolve())
        self.timing = timing or Timing()
        self.clock = clock
        self.identity = identity or scheduler_identity()
        self._engine = make_engine(settings.database_url)
        migrate(self._engine)
        self._state = SchedulerStateStore(make_sessionmaker(self._engine))
        self._lock = threading.Lock()
        self._scheduler: BackgroundScheduler | None = None
        self._closing = False
        self._paused_seen: bool | None = None
        # Why the lease was lost, until it is regained (then the owner is told).
        self._lost_lease: str | None = None
        self._leadership = Leadership(
            self._state,
            self.identity,
            self.timing,
            clock,
            promote=self._promote,
            demote=self._demote,
            renewed=self._watch_pause,
        )
        # Set and cleared by _promote/_demote under self._lock, with the scheduler.
        self._leading = self._leadership.leading
        self._thread = self._leadership.thread

    # -- life cycle ---------------------------------------------------------------

    @property
    def is_leader(self) -> bool:
        """Whether this service holds the lease and is firing."""
        return self._leading.is_set()

    def wait_until_leader(self, timeout: float) -> bool:
        """Block until this service leads (True) or ``timeout`` seconds pass (False)."""
        return self._leading.wait(timeout)

    def start(self) -> None:
        """Start competing for the lease; fire the schedule while holding it."""
        schedule = self.settings.schedule
        log.info(
            "scheduler %s starting: %s in %s, catch-up grace %s",
            self.identity,
            schedule.cron,
            schedule.timezone,
            schedule.catch_up_grace,
        )
        self._leadership.start()

    def stop(self, *, wait: bool = True) -> None:
        """Take no new firings, let the batch in hand finish (``wait``), give the lease up."""
        with self._lock:
            self._closing = True
            scheduler, self._scheduler = self._scheduler, None
        if scheduler is not None:
            if jobs.begin_shutdown():
                log.info("stopping: letting the batch in hand finish; the rest resumes on start")
            scheduler.shutdown(wait=wait)
            if wait:
                jobs.accept_firings()  # nothing of ours is left running or queued
        # The lease is renewed until the batch in hand is done, then given up.
        self._leadership.stop()
        self._engine.dispose()
        log.info("scheduler %s stopped", self.identity)

    # -- leadership ---------------------------------------------------------------

    def _promote(self) -> None:
        with self._lock:
            if self._closing:
                return
            jobs.accept_firings()
            scheduler = self._build()
            scheduler.start(paused=True)
            try:
                self._install_jobs(scheduler)
                scheduler.resume()
            except BaseException:
                scheduler.shutdown(wait=False)
                raise
            self._scheduler = scheduler
            self._leading.set()
        self._paused_seen = None
        log.info("scheduler %s is the leader: firing the schedule", self.identity)
        if self._lost_lease is not None:
            from pipeline.owner.alerts import alert_lease_regained

            alert_lease_regained(self.config_path, self.identity, self._lost_lease)
            self._lost_lease = None

    def _demote(self, reason: str) -> None:
        with self._lock:
            scheduler, self._scheduler = self._scheduler, None
            self._leading.clear()
        self._lost_lease = reason
        log.warning("no longer the leader (%s): stopped firing", reason)
        if scheduler is not None:
            jobs.begin_shutdown()
            scheduler.shutdown(wait=False)

    def _watch_pause(self) -> None:
        paused = self._state.paused()
        if paused != self._paused_seen:
            if paused:
                log.warning(
                    "schedule paused: firings and one-off sends are held"
                    " until `newsletter schedule resume`"
                )
            elif self._paused_seen:
                log.info("schedule resumed")
                with self._lock:
                    if self._scheduler is not None:
                        install_local_jobs(self._scheduler, [RESUME_INTERRUPTED], self.config_path)
        self._paused_seen = paused

    # -- APScheduler ----------------------------------------------------------------

    def _build(self) -> BackgroundScheduler:
        schedule = self.settings.schedule
        return BackgroundScheduler(
            timezone=schedule.tz,
            jobstores={
                LOCAL_STORE: MemoryJobStore(),
                # Its own engine: the job store disposes it on shutdown.
                _PERSISTENT: SQLAlchemyJobStore(engine=make_engine(self.settings.database_url)),
            },
            # One worker: one campaign at a time, and whatever is due waits its turn.
            executors={"default": ThreadPoolExecutor(max_workers=1)},
            job_defaults={
                **apscheduler_options(schedule.catch_up_grace),
                "max_instances": 1,
            },
        )

    def _install_jobs(self, scheduler: BackgroundScheduler) -> None:
        scheduler.add_listener(self._on_event, EVENT_JOB_SUBMITTED | EVENT_JOB_MISSED)
        install_recurring(scheduler, self.settings.schedule, self.config_path, _PERSISTENT)
        jobs_here = local_jobs(self.settings, self.timing.poll_every)
        install_local_jobs(scheduler, jobs_here, self.config_path)

    def _on_event(self, event: JobEvent) -> None:
        log_recurring_event(event, self.settings.schedule)
        if event.code == EVENT_JOB_MISSED and event.job_id == RECURRING_JOB:
            from pipeline.owner.alerts import alert_missed_firing

            grace = self.settings.schedule.catch_up_grace
            alert_missed_firing(self.config_path, event.scheduled_run_time, grace)

    def next_firing(self) -> datetime | None:
        """The recurring job's next firing per the leader's job store; None when not leading."""
        with self._lock:
            scheduler = self._scheduler
        if scheduler is None:
            return None
        job: Job | None = scheduler.get_job(RECURRING_JOB)
        moment: Any = job.next_run_time if job is not None else None
        return moment if isinstance(moment, datetime) else None
