"""The lease heartbeat: it outlives failed renewals, and a real SQLite lock."""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.exc import OperationalError

from pipeline.newsletter import Newsletter
from pipeline.sending.runner import CampaignRunner
from pipeline.sending.transports.base import CampaignMessage, DeliveryResult, Recipient
from pipeline.sending.transports.outbox import OutboxTransport
from pipeline.store.ledger import Claim, Ledger
from tests.helpers import SAMPLE_SLUG
from tests.sending.ledger_claims.helpers import _clock, _newsletter

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
