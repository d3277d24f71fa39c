"""How many of a process's lanes have a batch out at once: settings, or the provider's answer time.

A lane (see :mod:`pipeline.sending.runner`) claims a batch, builds its
requests, waits for the provider's answer and records the outcome. Only the
wait leaves the core free, so more lanes than ``1 + wait / work`` add nothing
but contention: lanes queue for the GIL and for SQLite's one writer, and a
send to a fast provider got slower with lanes past two or three (measured
against the loopback SendGrid: 4 lanes per process up to a fifth slower
than 2). Against a
real API, whose every answer takes 150 ms or more, the same ratio asks for
all of them.

So when the lanes are auto, :class:`LaneGate` starts each process with
:data:`START` batches out and, after every batch, sets how many may be out to
``1 + floor(wait / work)`` (at most the plan's lanes, never fewer than
:data:`START`): ``wait`` the shortest provider answer among the last few
batches (the shortest, because a lane that waited for the GIL after its
answer came would overstate it), ``work`` the median CPU time of a whole
batch in its thread (claim, bodies, record). Floor, not ceiling: another
lane is worth its contention only when a whole batch's work fits in the
wait.

Why never fewer than two: a batch also waits on the database, which the
ratio above does not see (on PostgreSQL a claim is a round trip to another
process; its CPU is not ours), and a second lane fills those waits.
Against the loopback SendGrid (answers in about 6 ms for 16 ms of work),
alternated runs of 100,000 on this 2-core machine: PostgreSQL 38,300-41,100
recipients/s with one lane per process, 40,800-43,300 with two; SQLite
63,800-65,700 and 63,000-65,900, the same. (Counting every off-CPU moment
as wait instead was far worse: lanes waiting for each other's locks asked
for more lanes, up to 8, and PostgreSQL fell to 30,000-34,000.) An earlier
measurement, on another machine, had found one lane better on SQLite (0.60-0.69
of the raw ceiling against 0.48-0.54 with two); on this one the two are the same.

A lane waiting for its turn holds no rows, so the ledger's rule (at most one
batch in doubt per lane) is untouched. With lanes set in ``[sending]
concurrency``, the gate lets them all run at once: the owner's number wins.
"""

from __future__ import annotations

import math
import statistics
import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager

#: Batches out at once in each process before the first answer has been timed, and
#: the fewest after (a slow provider rises to the plan's lanes).
START = 2
#: Batches whose timings the lane count follows.
WINDOW = 8
#: How often a lane waiting for its turn looks again whether the run is stopping.
POLL_SECONDS = 0.05


class LaneGate:
    """The turns of one process's lanes; ``adaptive`` False lets all ``most`` run."""

    def __init__(self, most: int, *, adaptive: bool) -> None:
        self._most = max(1, most)
        self._adaptive = adaptive
        self._limit = min(START, self._most) if adaptive else self._most
        self._out = 0
        self._condition = threading.Condition()
        self._waits: deque[float] = deque(maxlen=WINDOW)
        self._work: deque[float] = deque(maxlen=WINDOW)
        #: The most batches this gate let out at once (reported with the run).
        self.peak = 0

    @property
    def limit(self) -> int:
        """How many batches may be out at once now."""
        with self._condition:
            return self._limit

    @contextmanager
    def turn(self, stopping: Callable[[], bool]) -> Iterator[None]:
        """Wait for a turn (or a stop: then the lane goes on to see it), hold it for one batch."""
        with self._condition:
            while self._out >= self._limit and not stopping():
                self._condition.wait(POLL_SECONDS)
            self._out += 1
            self.peak = max(self.peak, self._out)
        try:
            yield
        finally:
            with self._condition:
                self._out -= 1
                self._condition.notify()

    def observe(self, waited: float, work: float) -> None:
        """One batch's provider wait (wall seconds) and its CPU seconds in the lane's thread."""
        if not self._adaptive:
            return
        with self._condition:
            self._waits.append(max(waited, 0.0))
            self._work.append(max(work, 1e-4))
            wait, cpu = min(self._waits), statistics.median(self._work)
            fewest = min(START, self._most)
            self._limit = max(fewest, min(self._most, 1 + math.floor(wait / cpu)))
            self._condition.notify_all()
