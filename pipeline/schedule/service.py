"""The scheduler service: one leader fires the clinic's schedule, kept in the database.

Any number of :class:`SchedulerService` processes may run against one
database; the one holding the lease in ``scheduler_state`` (see
:mod:`pipeline.store.scheduler_state`) is the leader and the only one running
APScheduler. The others wait and take over within a lease (60 s) if the leader
dies. The leader's APScheduler keeps the recurring job in the project
database (``SQLAlchemyJobStore``, job ``pipeline.schedule.jobs:send_due``), so a
firing missed while no scheduler ran is caught up once on start if it is
within ``[schedule] catch_up_grace``, several are coalesced into one, and
older ones are skipped and logged. Two more jobs live only in memory: a poll
that fires due one-off sends (the ``scheduled_sends`` table is their source
of truth, so the CLI in another process needs no channel to the scheduler),
a poll that retries campaigns a run left with rows pending once their backoff
is over (:mod:`pipeline.store.stops`), and, on becoming leader, a resume of
campaigns a stop or crash left half-sent.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from apscheduler.events import EVENT_JOB_MISSED, EVENT_JOB_SUBMITTED, JobEvent
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.job import Job
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy.exc import SQLAlchemyError

from pipeline.config import Settings
from pipeline.schedule import jobs
from pipeline.schedule.triggers import recurring_trigger
from pipeline.store.db import make_engine, make_sessionmaker, migrate
from pipeline.store.scheduler_state import SchedulerStateStore

log = logging.getLogger("pipeline.scheduler")

RECURRING_JOB = "recurring-send"
ONE_OFF_JOB = "one-off-sends"
RESUME_JOB = "resume-interrupted"
RETRY_JOB = "retry-stopped"
_ONE_OFF_NAME = "fire due one-off sends"
_RETRY_NAME = "retry stopped campaigns"
#: Jobs kept in the project database (APScheduler's own table, ``apscheduler_jobs``).
_PERSISTENT = "default"
#: Jobs rebuilt on every start, never stored.
_LOCAL = "local"
#: The resume job runs on becoming leader and on resume; this only keeps it alive.
_RESUME_INTERVAL_DAYS = 365
#: Enough to count the firings of any crontab missed during a long outage.
_MAX_COUNTED_MISSES = 10_000


class _QuietApscheduler(logging.Filter):
    """Drops APScheduler lines our own log says better or that are expected.

    Missed firings are reported by :class:`SchedulerService` with the grace
    that applied; the one-off poll overlapping a long send is normal.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        polls = _ONE_OFF_NAME in text or _RETRY_NAME in text
        overlap = polls and "maximum number of running instances" in text
        return not (overlap or text.startswith("Run time of job"))


for _name in ("apscheduler.scheduler", "apscheduler.executors.default"):
    logging.getLogger(_name).addFilter(_QuietApscheduler())


@dataclass(frozen=True)
class Timing:
    """How often the service talks to the database; tests shorten these.

    ``lease``: how long a leader's lease lasts unrenewed; the leader renews
    every ``renew_every``; a standby tries every ``retry_every``, so it takes
    over at most ``lease + retry_every`` after the leader died (55 s by
    default: "within a minute"). Due one-off sends, and campaigns whose retry
    is due, are looked for every ``poll_every``. All in seconds.
    """

    lease: float = 45.0
    renew_every: float = 15.0
    retry_every: float = 10.0
    poll_every: float = 5.0

    @classmethod
    def from_lease(cls, lease: float, poll_every: float = 5.0) -> Timing:
        """Renew three times and retry four times per lease."""
        return cls(lease=lease, renew_every=lease / 3, retry_every=lease / 4, poll_every=poll_every)


def scheduler_identity() -> str:
    """``host:pid:random``: who holds the lease (unique even if a pid is reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


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
        self._stopped = threading.Event()
        self._leading = threading.Event()
        self._lease_until: datetime | None = None
        self._waiting_logged = False
        self._paused_seen: bool | None = None
        self._thread = threading.Thread(target=self._run, name="scheduler-leadership", daemon=True)

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
        self._thread.start()

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
        self._stopped.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self.timing.renew_every + 30)
        self._leading.clear()
        try:
            self._state.release(self.identity)
        except SQLAlchemyError as exc:
            log.warning("could not give the lease up (%s); it expires by itself", exc)
        self._engine.dispose()
        log.info("scheduler %s stopped", self.identity)

    # -- leadership ---------------------------------------------------------------

    def _run(self) -> None:
        while True:
            try:
                self._tick()
            except Exception as exc:  # a database outage must not kill the service
                log.warning("scheduler: database trouble (%s); retrying", exc)
                lapsed = self._lease_until is not None and self.clock() >= self._lease_until
                if self.is_leader and lapsed:
                    self._demote("its lease ran out while the database was unreachable")
            interval = self.timing.renew_every if self.is_leader else self.timing.retry_every
            if self._stopped.wait(interval):
                return

    def _tick(self) -> None:
        now = self.clock()
        lease = timedelta(seconds=self.timing.lease)
        if self._state.acquire(self.identity, now, lease):
            self._lease_until = now + lease
            if not self.is_leader:
                self._promote()
            if self.is_leader:
                self._watch_pause()
            return
        if self.is_leader:
            self._demote("another scheduler took the lease")
        if not self._waiting_logged:
            status = self._state.status()
            until = status.lease_expires_at.isoformat() if status.lease_expires_at else "?"
            log.info(
                "another scheduler holds the lock (%s, lease until %s); waiting",
                status.leader,
                until,
                extra={"leader": status.leader},
            )
            self._waiting_logged = True

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
        self._waiting_logged = False
        self._paused_seen = None
        log.info("scheduler %s is the leader: firing the schedule", self.identity)

    def _demote(self, reason: str) -> None:
        with self._lock:
            scheduler, self._scheduler = self._scheduler, None
            self._leading.clear()
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
                        self._add_resume_job(self._scheduler)
        self._paused_seen = paused

    # -- APScheduler ----------------------------------------------------------------

    def _build(self) -> BackgroundScheduler:
        schedule = self.settings.schedule
        return BackgroundScheduler(
            timezone=schedule.tz,
            jobstores={
                _LOCAL: MemoryJobStore(),
                # Its own engine: the job store disposes it on shutdown.
                _PERSISTENT: SQLAlchemyJobStore(engine=make_engine(self.settings.database_url)),
            },
            # One worker: one campaign at a time, and whatever is due waits its turn.
            executors={"default": ThreadPoolExecutor(max_workers=1)},
            job_defaults={
                "coalesce": True,
                "max_instances": 1,
                "misfire_grace_time": self._grace_seconds,
            },
        )

    @property
    def _grace_seconds(self) -> int:
        return int(self.settings.schedule.catch_up_grace.total_seconds())

    def _install_jobs(self, scheduler: BackgroundScheduler) -> None:
        scheduler.add_listener(self._on_event, EVENT_JOB_SUBMITTED | EVENT_JOB_MISSED)
        self._install_recurring(scheduler)
        self._add_resume_job(scheduler)
        scheduler.add_job(
            "pipeline.schedule.jobs:send_scheduled_due",
            trigger="interval",
            seconds=self.timing.poll_every,
            args=[self.config_path],
            id=ONE_OFF_JOB,
            name=_ONE_OFF_NAME,
            jobstore=_LOCAL,
            next_run_time=datetime.now(UTC),
            misfire_grace_time=None,
            replace_existing=True,
        )
        # Same cadence as the one-off poll: a due retry starts within seconds
        # of its time (2 minutes after the stop, at first). The backoff itself
        # lives in the database, so a restart neither forgets nor hurries it.
        scheduler.add_job(
            "pipeline.schedule.jobs:retry_stopped",
            trigger="interval",
            seconds=self.timing.poll_every,
            args=[self.config_path],
            id=RETRY_JOB,
            name=_RETRY_NAME,
            jobstore=_LOCAL,
            misfire_grace_time=None,
            replace_existing=True,
        )

    def _add_resume_job(self, scheduler: BackgroundScheduler) -> None:
        # Runs now, then again only when rescheduled (on resume after a pause). Not
        # a one-shot job: APScheduler 3.11 removes those after they run, and that
        # removal races a shutdown (JobLookupError in its thread).
        scheduler.add_job(
            "pipeline.schedule.jobs:resume_interrupted",
            trigger="interval",
            days=_RESUME_INTERVAL_DAYS,
            args=[self.config_path],
            id=RESUME_JOB,
            name="resume interrupted campaigns",
            jobstore=_LOCAL,
            next_run_time=datetime.now(UTC),
            misfire_grace_time=None,
            replace_existing=True,
        )

    def _install_recurring(self, scheduler: BackgroundScheduler) -> None:
        """Keep the stored recurring job (its missed firings are caught up) unless it changed."""
        schedule = self.settings.schedule
        name = f"send the next due article ({schedule.cron}, {schedule.timezone})"
        stored: Job | None = scheduler.get_job(RECURRING_JOB, jobstore=_PERSISTENT)
        if (
            stored is not None
            and stored.name == name
            and stored.func_ref == "pipeline.schedule.jobs:send_due"
            and list(stored.args) == [self.config_path]
            and stored.next_run_time is not None
        ):
            if stored.misfire_grace_time != self._grace_seconds:
                stored.modify(misfire_grace_time=self._grace_seconds)
            self._report_downtime(stored)
            log.info("recurring schedule kept; next firing %s", self._local(stored.next_run_time))
            return
        if stored is not None:
            log.info("schedule changed (was: %s); firings start afresh", stored.name)
        job: Job = scheduler.add_job(
            "pipeline.schedule.jobs:send_due",
            trigger=recurring_trigger(schedule),
            args=[self.config_path],
            id=RECURRING_JOB,
            name=name,
            jobstore=_PERSISTENT,
            coalesce=True,
            max_instances=1,
            misfire_grace_time=self._grace_seconds,
            replace_existing=True,
        )
        log.info("recurring schedule set; next firing %s", self._local(job.next_run_time))

    def _report_downtime(self, stored: Job) -> None:
        """Say what the catch-up policy will do with firings missed while no scheduler ran."""
        now = datetime.now(UTC)
        missed: list[datetime] = []
        fire: datetime | None = stored.next_run_time
        while fire is not None and fire <= now and len(missed) < _MAX_COUNTED_MISSES:
            missed.append(fire)
            fire = stored.trigger.get_next_fire_time(fire, now)
        if not missed:
            return
        latest = missed[-1]
        grace = self.settings.schedule.catch_up_grace
        within = now - latest <= grace
        log.log(
            logging.INFO if within else logging.WARNING,
            "missed %d firing(s) while no scheduler ran (%s to %s): %s",
            len(missed),
            self._local(missed[0]),
            self._local(latest),
            (
                f"the latest is within the catch-up grace of {grace}: it runs once now"
                if within
                else f"all are beyond the catch-up grace of {grace}: skipped"
            ),
            extra={"missed": len(missed), "catch_up": within},
        )

    def _on_event(self, event: JobEvent) -> None:
        if event.job_id != RECURRING_JOB:
            return
        grace = self.settings.schedule.catch_up_grace
        if event.code == EVENT_JOB_MISSED:
            run_time: datetime = event.scheduled_run_time
            log.warning(
                "missed firing at %s: beyond the catch-up grace of %s; skipped, nothing sent",
                self._local(run_time),
                grace,
                extra={"scheduled_for": self._local(run_time)},
            )
            return
        times: list[datetime] = getattr(event, "scheduled_run_times", [])
        for run_time in times:
            late = datetime.now(UTC) - run_time
            if late > grace:
                continue  # the executor reports it as missed
            note = f" (catching up, {late - timedelta(microseconds=late.microseconds)} late)"
            log.info(
                "firing: recurring send scheduled for %s%s",
                self._local(run_time),
                note if late > timedelta(minutes=1) else "",
                extra={"scheduled_for": self._local(run_time)},
            )

    def _local(self, moment: datetime | None) -> str:
        if moment is None:
            return "none"
        return moment.astimezone(self.settings.schedule.tz).isoformat()

    def next_firing(self) -> datetime | None:
        """The recurring job's next firing per the leader's job store; None when not leading."""
        with self._lock:
            scheduler = self._scheduler
        if scheduler is None:
            return None
        job: Job | None = scheduler.get_job(RECURRING_JOB)
        moment: Any = job.next_run_time if job is not None else None
        return moment if isinstance(moment, datetime) else None
