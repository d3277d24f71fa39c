"""Helper processes: forked copies of a sender that work the same campaign.

Lanes (threads) overlap one batch's network wait with another's database
work, but building personal links and request bodies holds Python's GIL, so
one process uses one core however many lanes it has. ``[sending] processes``
forks that many senders in all; each claims batches from the ledger exactly as
separate ``newsletter worker`` processes would (a claim is a guarded UPDATE,
so no row goes twice), without the second or so each new interpreter takes to
start.

A helper knows nothing the parent does not: it is a copy. It never returns
into the parent's call stack: it ends with ``os._exit``. A helper that stops
early says why over a pipe of its own (:class:`HelperStop`), so the run's
report and the owner's notice are the same whichever process met the stop. A
helper that dies leaves its batch in flight; the parent, once the helpers are
reaped, has the ledger mark those rows uncertain (their sender is gone)
rather than resend.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import traceback
from collections.abc import Callable
from dataclasses import dataclass

from pipeline.errors import ConfigError

#: Exit codes of a helper: finished, stopped early (by request), crashed.
FINISHED, STOPPED, CRASHED = 0, 3, 70
#: The most of a stop's text a helper sends (far below a pipe's buffer: never blocks).
_MOST = 2000


@dataclass(frozen=True)
class HelperStop:
    """Why a helper stopped early, and the owner's part in it (None: nothing to do)."""

    reason: str
    needs_owner: str | None = None


@dataclass(frozen=True)
class HelperEnd:
    """How one helper process ended."""

    pid: int
    status: int  # as os.waitpid reports it
    stop: HelperStop | None = None  # what a helper that stopped early said

    @property
    def problem(self) -> str | None:
        """Why this end was not a normal finish (or an asked-for stop), if it was not."""
        if os.WIFSIGNALED(self.status):
            name = signal.Signals(os.WTERMSIG(self.status)).name
            return f"helper process {self.pid} was killed ({name})"
        code = os.waitstatus_to_exitcode(self.status)
        if code in (FINISHED, STOPPED):
            return None
        return f"helper process {self.pid} ended with exit code {code}"


class HelperProcesses:
    """``count`` forked helpers running ``work``; stop and reap them from the parent."""

    def __init__(self, count: int) -> None:
        if count > 0 and not hasattr(os, "fork"):
            raise ConfigError("sending.processes above 1 needs os.fork (Linux or macOS)")
        self._count = count
        self._pids: list[int] = []
        self._pipes: dict[int, int] = {}  # pid -> the read end of its stop pipe

    def start(self, before_fork: Callable[[], None], work: Callable[[], HelperStop | None]) -> None:
        """Fork the helpers; each runs ``work``: None if it finished, else why it stopped.

        ``before_fork`` runs once in the parent first: it must leave nothing a
        child could share by accident (open database connections above all).
        """
        if self._count <= 0:
            return
        before_fork()
        for _ in range(self._count):
            read, write = os.pipe()
            pid = os.fork()
            if pid == 0:
                os.close(read)
                os._exit(_run_child(work, write))
            os.close(write)  # now only that child holds it: EOF once it exits
            self._pids.append(pid)
            self._pipes[pid] = read

    def stop(self) -> None:
        """Ask every live helper to finish the batch in hand and stop."""
        for pid in self._pids:
            with contextlib.suppress(ProcessLookupError):  # already gone
                os.kill(pid, signal.SIGTERM)

    def wait(self) -> list[HelperEnd]:
        """Reap every helper (each ends once the campaign has nothing left it can claim)."""
        ends = []
        for pid in self._pids:
            _, status = os.waitpid(pid, 0)
            ends.append(HelperEnd(pid, status, _read_stop(self._pipes.pop(pid))))
        self._pids = []
        return ends


def _read_stop(read: int) -> HelperStop | None:
    """What a reaped helper wrote on its pipe (nothing: it finished, or died)."""
    with os.fdopen(read, "rb") as pipe:
        text = pipe.read()
    try:
        said = json.loads(text) if text else None
    except ValueError:  # cut short (killed while writing): its exit status tells the rest
        return None
    return HelperStop(str(said["reason"]), said.get("needs_owner")) if said else None


def _run_child(work: Callable[[], HelperStop | None], write: int) -> int:
    """Everything a helper does; any escape becomes an exit code, never a return."""
    try:
        stop = work()
        if stop is None:
            return FINISHED
        owner = stop.needs_owner[:_MOST] if stop.needs_owner else None
        os.write(write, json.dumps({"reason": stop.reason[:_MOST], "needs_owner": owner}).encode())
        return STOPPED
    except BaseException:
        # os.write, not print: a lock inherited mid-write from another thread
        # of the parent would never be released in this process.
        text = f"newsletter: helper process {os.getpid()} failed:\n{traceback.format_exc()}"
        os.write(2, text.encode("utf-8", "replace"))
        return CRASHED
