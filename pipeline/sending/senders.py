"""Who holds a claim, whether that sender is provably gone, and the lease heartbeat.

A claim names its sender so that a later run can tell a crashed sender (its
rows are in doubt at once) from a live one (leave its rows alone). A host name
and a pid are not enough: two containers with host networking share the host
name but not the PID namespace, and each would see the other's pid as missing.
So the identity also carries the boot id, the PID namespace and a random
per-process nonce, and only a checker that shares host, boot and namespace
may declare a sender dead from its pid; everyone else waits for the lease.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import socket
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import cache
from types import TracebackType

log = logging.getLogger("pipeline.sending.senders")

#: ``host:pid:boot:pidns:nonce``; fields we cannot read are ``-``. Host last to
#: be cut, so the whole stays within ``deliveries.claimed_by`` (200 characters).
_IDENTITY = re.compile(
    r"^(?P<host>.*):(?P<pid>\d+):(?P<boot>[0-9a-f]{32}|-):(?P<ns>\d+|-):(?P<nonce>[0-9a-f]{16})$"
)
_HOST_MAX = 120

#: First wait after a failed renewal; it doubles up to the heartbeat interval.
RETRY_FIRST = 0.05


def _new_nonce() -> str:
    return secrets.token_hex(8)


_nonce = _new_nonce()


def _renew_nonce() -> None:
    global _nonce
    _nonce = _new_nonce()


# A forked child is another sender: it must never pass for its parent.
os.register_at_fork(after_in_child=_renew_nonce)


@cache
def _boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as handle:
            return handle.read().strip().replace("-", "").lower() or "-"
    except OSError:
        return "-"


def _pid_namespace() -> str:
    # Not cached: ``unshare`` or a container runtime may move a process's
    # children into a new namespace, and a fork keeps the module state.
    try:
        return str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:
        return "-"


def sender_identity() -> str:
    """This process as a claim's owner: host, pid, boot id, PID namespace, nonce."""
    host = socket.gethostname()[:_HOST_MAX].replace(":", "_") or "-"
    return f"{host}:{os.getpid()}:{_boot_id()}:{_pid_namespace()}:{_nonce}"


def is_dead_sender(owner: str) -> bool:
    """Whether a claim's owner is provably gone: its pid is free in our own namespace.

    Only a sender on this host, this boot and this PID namespace can be
    checked from here (a live pid there counts as alive: with the nonce in
    the identity a reused pid errs on the side of waiting). Anyone else,
    including owners written by versions that stored only ``host:pid``, is
    left to its lease.
    """
    found = _IDENTITY.match(owner)
    if found is None:
        return False
    here = sender_identity()
    mine = _IDENTITY.match(here)
    assert mine is not None
    if found["boot"] == "-" or found["ns"] == "-":
        return False
    if (found["host"], found["boot"], found["ns"]) != (mine["host"], mine["boot"], mine["ns"]):
        return False
    pid = int(found["pid"])
    if pid == os.getpid():
        return found["nonce"] != mine["nonce"]  # an earlier process that had our pid
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # exists, owned by someone else
    return False


class Heartbeat:
    """Renews a claim's lease every ``interval`` seconds while a batch is out.

    A renewal that fails (a database blip, SQLite "database is locked") is
    logged and retried with backoff rather than ending the heartbeat, since
    a long batch would then outlive its lease. ``lost`` turns true once the
    claim is provably gone (a renewal matched no row: someone expired it) or
    renewals have failed for longer than the lease, so the sender knows
    before it records.
    """

    def __init__(
        self,
        renew: Callable[[], bool],
        interval: float,
        lease: timedelta,
        clock: Callable[[], datetime],
    ) -> None:
        self._renew = renew
        self._interval = interval
        self._lease = lease
        self._clock = clock
        self.lost = False
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="lease-heartbeat", daemon=True)

    def _beat(self) -> None:
        renewed = self._clock()
        while not self._done.wait(self._interval):
            delay = RETRY_FIRST
            while True:
                try:
                    held = self._renew()
                except Exception as exc:  # any failure: log it and retry
                    # The exception's class and first line only: a driver's
                    # message never carries the password, but keep it short.
                    detail = (str(exc).splitlines() or [""])[0][:200]
                    log.warning(
                        "lease renewal failed (%s: %s); retrying in %.2f s",
                        type(exc).__name__,
                        detail,
                        delay,
                    )
                    if not self.lost and self._clock() - renewed > self._lease:
                        self.lost = True
                        log.warning("lease lapsed: renewals failed for longer than the lease")
                    if self._done.wait(delay):
                        return
                    delay = min(delay * 2, self._interval)
                    continue
                if not held:
                    self.lost = True
                    log.warning("lease lost: the claim was expired by another sender")
                    return
                renewed = self._clock()
                break

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._done.set()
        self._thread.join(timeout=self._interval + 5)
