"""How many lanes and processes a send uses when settings leave it to us ("auto").

``[sending] concurrency`` (lanes: batches in flight per process) and
``processes`` default to auto: the numbers are chosen at the start of each run
from what the run is and what the machine has, and printed once
(``sending with 4 lanes in 2 processes``). A number in settings always wins.

Why these numbers:

- an HTTP API transport spends most of a batch waiting for the provider's
  answer (150 ms or more over the internet), so it may keep up to
  :data:`API_LANES` requests in flight per process, and how many it does
  follows the answer time it sees (:mod:`pipeline.sending.lanes`): all of
  them against a slow API, one or two against a fast one, where more lanes
  only queue for the GIL and the database;
- an SMTP transport opens one connection per lane, and mail servers limit
  connections per client, so its lanes (over all processes) stay within
  ``[smtp] max_connections``;
- anything else (the outbox, a local test transport) does its work on the CPU
  while it holds the GIL: one lane;
- never more lanes in a process than it has batches to claim: a lane with
  nothing to claim adds nothing, and on PostgreSQL two lanes claiming at the
  same moment split a campaign of one batch into two requests;
- a helper process costs a fork and a database connection, and repays it only
  for a campaign of at least :data:`ROWS_PER_PROCESS` pending rows per
  process, on a machine with a core for each.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

#: What a transport is, as far as choosing lanes goes (``Transport.kind``).
TransportKind = Literal["api", "smtp", "local"]

#: Most lanes per process of an HTTP API transport (SendGrid, any HttpTransport)
#: when auto. Against the loopback SendGrid with 150 ms of latency, 2 processes
#: x 8 lanes were 5 times faster than one request at a time.
API_LANES = 8
#: A helper process is forked only for this many pending rows per process.
ROWS_PER_PROCESS = 20_000
#: Auto never forks past this many processes, however many cores: each process
#: has its own lanes, and a provider sees them all as one client.
MAX_AUTO_PROCESSES = 4


@dataclass(frozen=True)
class SendPlan:
    """The lanes per process and the processes one run sends with.

    ``adaptive``: ``lanes`` is a most, and how many have a batch out follows
    the provider's answer time (:class:`pipeline.sending.lanes.LaneGate`).
    """

    lanes: int
    processes: int
    adaptive: bool = False

    def describe(self) -> str:
        """The line a send prints once, at its start."""
        lanes = "lane" if self.lanes == 1 else "lanes"
        processes = "process" if self.processes == 1 else "processes"
        if self.adaptive:
            return (
                f"sending with up to {self.lanes} {lanes} in {self.processes} {processes}"
                " (as many as the provider's answer time needs)"
            )
        return f"sending with {self.lanes} {lanes} in {self.processes} {processes}"


def usable_cpus() -> int:
    """The cores this process may run on (its affinity mask, where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def choose_plan(
    kind: TransportKind,
    pending: int,
    *,
    concurrency: int | None,
    processes: int | None,
    cpus: int,
    smtp_max_connections: int,
    batch_size: int,
    can_fork: bool = True,
) -> SendPlan:
    """The plan for a run of ``pending`` rows claimed ``batch_size`` at a time;
    ``concurrency``/``processes`` None mean auto."""
    if processes is None:
        processes = _auto_processes(pending, cpus, can_fork)
        if kind == "smtp":
            # Every process needs at least one connection of its own.
            processes = min(processes, smtp_max_connections)
    adaptive = concurrency is None and kind == "api"
    if concurrency is None:
        if kind == "api":
            concurrency = API_LANES
        elif kind == "smtp":
            concurrency = max(1, smtp_max_connections // processes)
        else:
            concurrency = 1
        # Each process's share of the batches bounds its auto lanes.
        batches = math.ceil(pending / max(1, batch_size) / max(1, processes))
        concurrency = max(1, min(concurrency, batches))
        adaptive = adaptive and concurrency > 1
    return SendPlan(lanes=max(1, concurrency), processes=max(1, processes), adaptive=adaptive)


def plan_run(
    kind: TransportKind,
    pending: Callable[[], int],
    *,
    concurrency: int | None,
    processes: int | None,
    cpus: int | None,
    smtp_max_connections: int,
    batch_size: int,
) -> SendPlan:
    """:func:`choose_plan` for a run: the usable cores when ``cpus`` is None, and
    ``pending()`` asked only when its answer matters (it counts an index)."""
    usable = cpus if cpus is not None else usable_cpus()
    counted = concurrency is None or (processes is None and usable > 1)
    return choose_plan(
        kind,
        pending() if counted else 0,
        concurrency=concurrency,
        processes=processes,
        cpus=usable,
        smtp_max_connections=smtp_max_connections,
        batch_size=batch_size,
        can_fork=hasattr(os, "fork"),
    )


def _auto_processes(pending: int, cpus: int, can_fork: bool) -> int:
    if not can_fork or cpus <= 1:
        return 1
    return max(1, min(cpus, MAX_AUTO_PROCESSES, pending // ROWS_PER_PROCESS))
