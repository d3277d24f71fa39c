"""Claims under stress: owners, leases, token-matched write-backs, long suppressed runs.

SQLite and PostgreSQL; other senders are real processes (``tests/fakes/claimer.py``).
"""

from __future__ import annotations

import concurrent.futures
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update
from sqlalchemy.exc import OperationalError

from pipeline.config import load_settings
from pipeline.newsletter import Newsletter
from pipeline.sending.runner import DEFAULT_LEASE, CampaignRunner
from pipeline.sending.senders import is_dead_sender, sender_identity
from pipeline.sending.transports.base import CampaignMessage, DeliveryResult, Recipient
from pipeline.sending.transports.outbox import OutboxTransport
from pipeline.store.ledger import Claim, Ledger, OutcomeGroup
from pipeline.store.models import Delivery, DeliveryStatus, Subscriber, SubscriberStatus
from pipeline.subscribers import import_csv
from tests.databases import unavailable
from tests.helpers import SAMPLE_SLUG, FixedClock, copy_sample_folder

CLAIMER = Path(__file__).resolve().parents[1] / "fakes" / "claimer.py"
ROOT = CLAIMER.parent.parent


@pytest.fixture
def newsletter(tmp_path: Path, database_url: str) -> Newsletter:
    """The sample folder (5 subscribers), its clock at the real time (children claim by it)."""
    return _newsletter(tmp_path, database_url)


def _newsletter(tmp_path: Path, database_url: str) -> Newsletter:
    config = copy_sample_folder(tmp_path / "clinic")
    settings = load_settings(
        config,
        environ={"NEWSLETTER_SECRET_KEY": "test-secret", "NEWSLETTER_DATABASE_URL": database_url},
    )
    nl = Newsletter(settings, clock=FixedClock(datetime.now(UTC)))
    import_csv(nl.sessions, tmp_path / "clinic" / "sample-subscribers.csv")
    return nl


def _clock(nl: Newsletter) -> FixedClock:
    assert isinstance(nl.clock, FixedClock)
    return nl.clock


def _rows(nl: Newsletter) -> dict[int, tuple[DeliveryStatus, str | None, str | None]]:
    with nl.sessions() as session:
        rows = session.execute(
            select(Delivery.id, Delivery.status, Delivery.claim_token, Delivery.message_id)
        )
        return {i: (DeliveryStatus(s), t, m) for i, s, t, m in rows}


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


# -- point 2: a heartbeat that outlives failed renewals --------------------------------


class _WaitsForRenewal(OutboxTransport):
    """Writes each batch to the outbox, but only after the lease was renewed meanwhile.

    While the batch is "out", the run's clock moves past the lease twice, and
    another process's expiry pass runs: rows whose lease was renewed stay.
    """

    def __init__(self, nl: Newsletter, renewed: threading.Event, lease: timedelta) -> None:
        super().__init__(nl.settings.outbox_path, nl.clock)
        self._nl, self._renewed, self._lease = nl, renewed, lease
        self.expired: list[int] = []

    def send_batch(
        self, message: CampaignMessage, recipients: list[Recipient]
    ) -> list[DeliveryResult]:
        clock = _clock(self._nl)
        campaign = self._nl.ledger.get_campaign(message.campaign)
        assert campaign is not None
        clock.advance(seconds=self._lease.total_seconds() * 0.75)
        assert self._renewed.wait(timeout=20), "the lease was never renewed"
        clock.advance(seconds=self._lease.total_seconds() * 0.75)
        other = self._nl.ledger.expire_stale(
            campaign.id, clock(), self._lease, lambda _owner: False
        )
        self.expired.append(other)
        return super().send_batch(message, recipients)


def _run_with(nl: Newsletter, store: Ledger, transport: OutboxTransport, lease: timedelta) -> None:
    runner = CampaignRunner(
        store,
        lambda: transport,
        sender=nl.sender(),
        links=nl.links(),
        batch_size=1000,
        clock=nl.clock,
        lease=lease,
    )
    campaign, _ = nl.plan(SAMPLE_SLUG)
    result = runner.run(campaign)
    assert (result.counts.sent, result.counts.uncertain) == (5, 0)


def test_failed_renewals_are_retried_and_the_lease_holds(
    newsletter: Newsletter, caplog: pytest.LogCaptureFixture
) -> None:
    renewed = threading.Event()

    class Blips(Ledger):
        """The real ledger, whose first three renewals meet a database blip."""

        failures = 0

        def renew(self, claim: Claim, now: datetime) -> bool:
            if self.failures < 3:
                self.failures += 1
                raise OperationalError("UPDATE deliveries", {}, Exception("database is locked"))
            held = super().renew(claim, now)
            renewed.set()
            return held

    lease = timedelta(seconds=0.4)  # the heartbeat beats every 0.1 s
    transport = _WaitsForRenewal(newsletter, renewed, lease)
    with caplog.at_level(logging.WARNING, logger="pipeline.sending.senders"):
        _run_with(newsletter, Blips(newsletter.sessions), transport, lease)
    assert transport.expired == [0]
    failures = [r for r in caplog.records if "lease renewal failed" in r.getMessage()]
    assert len(failures) == 3 and "database is locked" in failures[0].getMessage()


def test_a_real_sqlite_lock_does_not_stop_the_heartbeat(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'locked.db'}"
    newsletter = _newsletter(tmp_path, url)
    import sqlite3

    from pipeline.store.db import make_sessionmaker

    renewed, failed_twice = threading.Event(), threading.Event()
    locker = sqlite3.connect(
        url.removeprefix("sqlite:///"), isolation_level=None, check_same_thread=False
    )

    class Notes(logging.Handler):
        count = 0

        def emit(self, record: logging.LogRecord) -> None:
            if "lease renewal failed" in record.getMessage():
                self.count += 1
                if self.count == 2:
                    failed_twice.set()

    class Impatient(Ledger):
        """The real ledger on an engine that waits 50 ms for a lock instead of 30 s."""

        def renew(self, claim: Claim, now: datetime) -> bool:
            held = super().renew(claim, now)
            if failed_twice.is_set():
                renewed.set()
            return held

    class LockedWhileOut(_WaitsForRenewal):
        def send_batch(
            self, message: CampaignMessage, recipients: list[Recipient]
        ) -> list[DeliveryResult]:
            locker.execute("BEGIN IMMEDIATE")  # another process holds the write lock
            assert failed_twice.wait(timeout=20)
            locker.execute("ROLLBACK")
            return super().send_batch(message, recipients)

    from sqlalchemy import create_engine

    impatient = Impatient(make_sessionmaker(create_engine(url, connect_args={"timeout": 0.05})))
    notes = Notes()
    logging.getLogger("pipeline.sending.senders").addHandler(notes)
    lease = timedelta(seconds=0.4)
    transport = LockedWhileOut(newsletter, renewed, lease)
    try:
        _run_with(newsletter, impatient, transport, lease)
    finally:
        logging.getLogger("pipeline.sending.senders").removeHandler(notes)
        locker.close()
    assert transport.expired == [0]
    assert notes.count >= 2


# -- point 3: write-backs match the claim token ----------------------------------------


def test_the_pending_count_from_its_index_agrees_with_the_full_count(
    newsletter: Newsletter,
) -> None:
    campaign, _ = newsletter.plan(SAMPLE_SLUG)
    ledger, clock = newsletter.ledger, _clock(newsletter)
    assert ledger.pending(campaign.id) == ledger.counts(campaign).pending == 5
    claim = ledger.claim(campaign.id, 2, clock(), "sender-a")
    assert ledger.pending(campaign.id) == ledger.counts(campaign).pending == 3
    ledger.release(claim)
    assert ledger.pending(campaign.id) == ledger.counts(campaign).pending == 5


def test_a_late_sender_never_touches_rows_claimed_again_by_another(newsletter: Newsletter) -> None:
    campaign, _ = newsletter.plan(SAMPLE_SLUG)
    ledger, clock = newsletter.ledger, _clock(newsletter)
    a = ledger.claim(campaign.id, 5, clock(), "sender-a")
    ids = [r.delivery_id for r in a.rows]
    # A looks dead (say, from another PID namespace); the owner resends what is in doubt.
    assert ledger.expire_stale(campaign.id, clock(), DEFAULT_LEASE, lambda o: o == "sender-a") == 5
    assert ledger.requeue_uncertain(campaign.id) == 5
    b = ledger.claim(campaign.id, 5, clock(), "sender-b")
    assert sorted(r.delivery_id for r in b.rows) == sorted(ids) and b.token != a.token
    # A was only slow: it reports every way it can, late.
    sent = DeliveryStatus.SENT
    ledger.record(a, [OutcomeGroup(sent, tuple(ids), "<a@x>")], clock())  # by token
    ledger.record(
        a,
        [OutcomeGroup(sent, tuple(ids[:2]), "<a1@x>"), OutcomeGroup(sent, (ids[2],), "<a2@x>")],
        clock(),
    )  # by id
    ledger.release(a, ids[3:])
    ledger.release(a)
    assert ledger.renew(a, clock()) is False
    assert set(_rows(newsletter).values()) == {(DeliveryStatus.SENDING, b.token, None)}
    # B's own write-back goes through.
    assert ledger.renew(b, clock()) is True
    ledger.record(b, [OutcomeGroup(sent, tuple(ids), "<b@x>")], clock())
    assert set(_rows(newsletter).values()) == {(sent, None, "<b@x>")}


def test_an_expired_sender_that_reports_later_is_taken_at_its_word(
    newsletter: Newsletter, caplog: pytest.LogCaptureFixture
) -> None:
    campaign, _ = newsletter.plan(SAMPLE_SLUG)
    ledger, clock = newsletter.ledger, _clock(newsletter)
    whole = ledger.claim(campaign.id, 2, clock(), "slow")
    parts = ledger.claim(campaign.id, 3, clock(), "slow")
    clock.advance(minutes=3)
    assert ledger.expire_stale(campaign.id, clock(), DEFAULT_LEASE, lambda _o: False) == 5
    assert ledger.counts(campaign).uncertain == 5
    sent = DeliveryStatus.SENT
    p = [r.delivery_id for r in parts.rows]
    with caplog.at_level(logging.WARNING, logger="pipeline.ledger"):
        ledger.record(
            whole, [OutcomeGroup(sent, tuple(r.delivery_id for r in whole.rows), "<w@x>")], clock()
        )
        ledger.record(
            parts, [OutcomeGroup(DeliveryStatus.FAILED, (p[0],), error="mailbox full")], clock()
        )
        ledger.release(parts, p[1:])
    counts = ledger.counts(campaign)
    assert (counts.sent, counts.failed, counts.pending, counts.uncertain) == (2, 1, 2, 0)
    said = " | ".join(r.getMessage() for r in caplog.records)
    assert "settled by their own sender" in said and "given back by their own sender" in said


# -- point 8: a long run of suppressed rows does not end a lane -----------------------


def test_a_long_run_of_people_who_left_does_not_end_the_lane(
    newsletter: Newsletter, tmp_path: Path
) -> None:
    audience = tmp_path / "more.csv"
    gone = [f"gone{i:02d}@example.com" for i in range(50)]
    staying = [f"stay{i}@example.com" for i in range(3)]
    audience.write_text("email\n" + "\n".join(gone + staying) + "\n", encoding="utf-8")
    import_csv(newsletter.sessions, audience)
    newsletter.plan(SAMPLE_SLUG)
    # They left after planning, by a path that does not touch the ledger (a
    # provider's webhook, say): only the claim notices, batch by batch.
    with newsletter.sessions.begin() as session:
        session.execute(
            update(Subscriber)
            .where(Subscriber.email.not_in(staying))
            .values(status=SubscriberStatus.UNSUBSCRIBED)
        )
    sending = newsletter.settings.sending.model_copy(update={"batch_size": 2})
    newsletter.settings = newsletter.settings.model_copy(update={"sending": sending})
    report = newsletter.send(SAMPLE_SLUG)
    c = report.counts
    assert (c.sent, c.suppressed, c.pending, c.sending) == (3, 55, 0, 0)
    assert report.complete
    names = sorted(p.name for p in (newsletter.settings.outbox_path / SAMPLE_SLUG).glob("*.eml"))
    assert len(names) == 3 and all("stay" in n for n in names)
