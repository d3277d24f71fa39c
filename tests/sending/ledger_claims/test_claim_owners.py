"""Who a claim's owner is, and when it is provably gone (other senders are real processes)."""

from __future__ import annotations

import concurrent.futures
import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

from pipeline.newsletter import Newsletter
from pipeline.sending.runner import DEFAULT_LEASE
from pipeline.sending.senders import is_dead_sender, sender_identity
from tests.databases import unavailable
from tests.helpers import SAMPLE_SLUG
from tests.sending.ledger_claims.helpers import _clock

CLAIMER = Path(__file__).resolve().parents[2] / "fakes" / "claimer.py"
ROOT = CLAIMER.parent.parent


# -- point 1: who a claim's owner is, and when it is provably gone ---------------------


def _start_claimer(
    nl: Newsletter, campaign_id: int, *prefix: str, pid: int | None = None
) -> tuple[subprocess.Popen[str], str, str]:
    args = [*prefix, sys.executable, str(CLAIMER), nl.settings.database.url, str(campaign_id), "3"]
    if pid is not None:
        args.append(str(pid))
    proc = subprocess.Popen(
        args,
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        line = pool.submit(proc.stdout.readline).result(timeout=60)
    assert line, proc.stderr.read() if proc.stderr else ""
    owner, token = line.split()
    return proc, owner, token


def _end(proc: subprocess.Popen[str]) -> None:
    assert proc.stdin is not None
    proc.stdin.close()
    proc.wait(timeout=30)


def _pid_unused_here() -> int:
    pid_max = int(Path("/proc/sys/kernel/pid_max").read_text(encoding="ascii"))
    for pid in range(pid_max - 10, pid_max // 2, -1):  # high pids are rarely in use
        if not Path(f"/proc/{pid}").exists():
            return pid
    raise AssertionError("no free pid")


def test_a_live_sender_in_another_pid_namespace_keeps_its_rows(newsletter: Newsletter) -> None:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        unavailable("a PID namespace needs root and unshare(1)")
    probe = subprocess.run(["unshare", "--pid", "--fork", "true"], capture_output=True, timeout=60)
    if probe.returncode != 0:
        unavailable(f"unshare --pid --fork failed: {probe.stderr.decode(errors='replace')[:200]}")
    campaign, _ = newsletter.plan(SAMPLE_SLUG)
    ledger, clock = newsletter.ledger, _clock(newsletter)
    # Same host name, same boot; its pid means no process at all out here.
    target = _pid_unused_here()
    proc, owner, _token = _start_claimer(
        newsletter, campaign.id, "unshare", "--pid", "--fork", pid=target
    )
    try:
        host, pid = owner.split(":")[:2]
        if int(pid) != target or Path(f"/proc/{pid}").exists():
            unavailable("could not give the namespaced sender a pid unused outside it")
        assert host == socket.gethostname()
        assert not is_dead_sender(owner)
        assert ledger.expire_stale(campaign.id, clock(), DEFAULT_LEASE, is_dead_sender) == 0
        assert ledger.counts(campaign).sending == 3
        # Not forever: once its lease lapses unrenewed, its rows are in doubt.
        clock.advance(minutes=3)
        assert ledger.expire_stale(campaign.id, clock(), DEFAULT_LEASE, is_dead_sender) == 3
    finally:
        _end(proc)


def test_a_killed_sender_in_our_namespace_is_in_doubt_at_once(newsletter: Newsletter) -> None:
    campaign, _ = newsletter.plan(SAMPLE_SLUG)
    ledger, clock = newsletter.ledger, _clock(newsletter)
    proc, owner, _token = _start_claimer(newsletter, campaign.id)
    try:
        assert owner != sender_identity()
        # Alive: its rows stay in flight.
        assert ledger.expire_stale(campaign.id, clock(), DEFAULT_LEASE, is_dead_sender) == 0
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert is_dead_sender(owner)
    assert ledger.expire_stale(campaign.id, clock(), DEFAULT_LEASE, is_dead_sender) == 3
    counts = ledger.counts(campaign)
    assert (counts.uncertain, counts.sending) == (3, 0)


def test_an_owner_in_the_old_host_pid_form_waits_for_its_lease(newsletter: Newsletter) -> None:
    # Written by an earlier version: it names a pid, not the namespace it lived in.
    finished = subprocess.Popen(["true"])
    finished.wait(timeout=30)
    owner = f"{socket.gethostname()}:{finished.pid}"
    assert not is_dead_sender(owner)
    campaign, _ = newsletter.plan(SAMPLE_SLUG)
    ledger, clock = newsletter.ledger, _clock(newsletter)
    ledger.claim(campaign.id, 2, clock(), owner)
    assert ledger.expire_stale(campaign.id, clock(), DEFAULT_LEASE, is_dead_sender) == 0
    clock.advance(minutes=3)
    assert ledger.expire_stale(campaign.id, clock(), DEFAULT_LEASE, is_dead_sender) == 2


def test_the_identity_names_boot_namespace_and_a_nonce_per_process() -> None:
    mine = sender_identity()
    assert len(mine) <= 200 and mine == sender_identity()
    host, pid, boot, namespace, nonce = mine.rsplit(":", 4)
    assert (host, int(pid)) == (socket.gethostname(), os.getpid())
    assert boot == Path("/proc/sys/kernel/random/boot_id").read_text().strip().replace("-", "")
    assert int(namespace) == os.stat("/proc/self/ns/pid").st_ino
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        os.write(write, sender_identity().encode())
        os._exit(0)
    os.close(write)
    os.waitpid(child, 0)
    theirs = os.read(read, 300).decode()
    os.close(read)
    assert theirs.rsplit(":", 1)[1] != nonce
    assert is_dead_sender(theirs)  # reaped: its pid is free in our namespace
