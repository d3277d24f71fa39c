"""Who fires the schedule: the lease in ``scheduler_state`` and the loop that holds it.

Any number of scheduler processes may run against one database; the one
holding the lease (see :mod:`pipeline.store.scheduler_state`) is the leader.
:class:`Leadership` is the background thread that tries for the lease, renews
it while leading, notices when it is lost (another scheduler took it, or it
ran out while the database was unreachable) and gives it up on stop. What a
leader does is the caller's: :class:`pipeline.schedule.service.SchedulerService`
passes what to do on promotion, on demotion and on every renewal.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.exc import SQLAlchemyError

from pipeline.store.scheduler_state import SchedulerStateStore

log = logging.getLogger("pipeline.scheduler")


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


class Leadership:
    """The lease loop: a daemon thread competing for, renewing and giving up the lease.

    ``promote()`` is called on winning the lease and must set :attr:`leading`
    if it starts leading (it may decline, e.g. while stopping);
    ``demote(reason)`` on losing it, and must clear :attr:`leading`;
    ``renewed()`` after each renewal while leading.
    """

    def __init__(
        self,
        state: SchedulerStateStore,
        identity: str,
        timing: Timing,
        clock: Callable[[], datetime],
        *,
        promote: Callable[[], None],
        demote: Callable[[str], None],
        renewed: Callable[[], None],
    ) -> None:
        self._state = state
        self.identity = identity
        self.timing = timing
        self.clock = clock
        self._promote = promote
        self._demote = demote
        self._renewed = renewed
        self.leading = threading.Event()
        self._stopped = threading.Event()
        self._lease_until: datetime | None = None
        self._waiting_logged = False
        self.thread = threading.Thread(target=self._run, name="scheduler-leadership", daemon=True)

    @property
    def is_leader(self) -> bool:
        """Whether this process holds the lease and is firing."""
        return self.leading.is_set()

    def start(self) -> None:
        """Start competing for the lease in the background."""
        self.thread.start()

    def stop(self) -> None:
        """End the loop and give the lease up (it would expire by itself anyway)."""
        self._stopped.set()
        if self.thread.is_alive():
            self.thread.join(timeout=self.timing.renew_every + 30)
        self.leading.clear()
        try:
            self._state.release(self.identity)
        except SQLAlchemyError as exc:
            log.warning("could not give the lease up (%s); it expires by itself", exc)

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
                    self._waiting_logged = False
            if self.is_leader:
                self._renewed()
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
