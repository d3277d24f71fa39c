"""Erasing someone while a campaign's rows are being written leaves no row pointing at them.

A claim writes its people's ledger rows (``pipeline.store.snapshot``), so
that is the writer an erasure races.

``deliveries`` has no foreign keys (migration 0016); the links are kept by two
locks (:mod:`pipeline.store.ledger_links`). Each test holds one writer open
inside its transaction, its rows written but not committed, starts the other,
and lets the first commit only once the second is blocked behind it: on
PostgreSQL once the server shows it waiting on a lock (or it has ended, which
is the bug), on SQLite once it has issued its first write (one writer at a
time). Every wait is bounded.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy import event, func, select

from pipeline.newsletter import Newsletter
from pipeline.store.models import Delivery, DeliveryStatus, Subscriber
from pipeline.subscribers import forget_subscriber
from tests.databases import until_waiting_on_a_lock
from tests.helpers import SAMPLE_SLUG

WAIT = 15.0  # seconds: the bound on every wait below


def _race(
    nl: Newsletter, first: Callable[[], Any], hold_after: str, second: Callable[[], Any]
) -> None:
    """Run ``first`` until it has executed ``hold_after``; then ``second``, until it is blocked."""
    holding, release, second_wrote = threading.Event(), threading.Event(), threading.Event()
    holder: list[int] = []
    errors: list[BaseException] = []

    def before(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        other = holding.is_set() and threading.get_ident() != holder[0]
        if other and statement.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE")):
            second_wrote.set()

    def after(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if not holding.is_set() and statement.startswith(hold_after):
            holder.append(threading.get_ident())
            holding.set()
            assert release.wait(WAIT), "the race was never released"

    def call(job: Callable[[], Any]) -> None:
        try:
            job()
        except BaseException as error:  # reported below, not lost in the thread
            errors.append(error)

    event.listen(nl.engine, "before_cursor_execute", before)
    event.listen(nl.engine, "after_cursor_execute", after)
    threads = [threading.Thread(target=call, args=(job,)) for job in (first, second)]
    try:
        threads[0].start()
        assert holding.wait(WAIT), f"the first writer never ran {hold_after!r}"
        threads[1].start()
        if nl.engine.dialect.name == "postgresql":
            until_waiting_on_a_lock(nl.engine, threads[1], WAIT)
        else:
            assert second_wrote.wait(WAIT), "the second writer never wrote"
    finally:
        release.set()
        for thread in threads:
            thread.join(WAIT)
        event.remove(nl.engine, "before_cursor_execute", before)
        event.remove(nl.engine, "after_cursor_execute", after)
    assert not any(t.is_alive() for t in threads), "a writer never finished"
    assert not errors, errors


def _first_subscriber(nl: Newsletter) -> tuple[int, str]:
    with nl.sessions() as session:
        row = session.execute(
            select(Subscriber.id, Subscriber.email).order_by(Subscriber.id)
        ).first()
        assert row is not None
        return row.id, row.email


def _rows(nl: Newsletter) -> list[tuple[int | None, DeliveryStatus]]:
    with nl.sessions() as session:
        rows = session.execute(
            select(Delivery.subscriber_id, Delivery.status).order_by(Delivery.id)
        )
        return [(s, DeliveryStatus(status)) for s, status in rows]


def _forget(nl: Newsletter, email: str) -> Callable[[], Any]:
    return lambda: forget_subscriber(nl.sessions, email, secret_key="test-secret")


def _plan_and_claim(nl: Newsletter) -> Callable[[], Any]:
    def job() -> None:
        campaign, _ = nl.plan(SAMPLE_SLUG)
        nl.ledger.claim(campaign.id, 10, nl.clock(), "sender")

    return job


def test_an_erasure_during_a_claim_waits_and_unlinks_the_new_row(newsletter: Newsletter) -> None:
    erased, email = _first_subscriber(newsletter)
    _race(
        newsletter,
        _plan_and_claim(newsletter),
        "INSERT INTO deliveries",
        _forget(newsletter, email),
    )
    rows = _rows(newsletter)
    # Claimed while they were still here: their row stays (the counts add up),
    # pointing at no one. In flight, if the claim read their address before
    # the erasure committed (one batch's worth, as for anyone who leaves while
    # it is out); suppressed if it found them gone.
    assert len(rows) == 5
    assert erased not in {subscriber for subscriber, _ in rows}
    (theirs,) = [status for subscriber, status in rows if subscriber is None]
    assert theirs in (DeliveryStatus.SENDING, DeliveryStatus.SUPPRESSED)
    with newsletter.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Subscriber)) == 4


def test_a_claim_during_an_erasure_waits_and_leaves_them_out(newsletter: Newsletter) -> None:
    erased, email = _first_subscriber(newsletter)
    _race(
        newsletter,
        _forget(newsletter, email),
        "DELETE FROM subscribers",
        _plan_and_claim(newsletter),
    )
    rows = _rows(newsletter)
    assert len(rows) == 4
    assert erased not in {subscriber for subscriber, _ in rows}
    assert {status for _, status in rows} == {DeliveryStatus.SENDING}


def test_a_claim_waiting_for_another_reads_where_that_one_stopped(newsletter: Newsletter) -> None:
    """The second claim's people start past the first's, read once the first commits.

    Its "where are claims now?" is one statement that locks the campaign's row
    and reads the next people through it; on PostgreSQL, having waited for
    the lock, it must read them past the first claim's (not collide with
    them and have to try again around them).
    """
    campaign, _ = newsletter.plan(SAMPLE_SLUG)
    taken: dict[str, list[int]] = {}
    careful: list[str] = []

    def claim(name: str) -> Callable[[], Any]:
        def job() -> None:
            got = newsletter.ledger.claim(campaign.id, 2, newsletter.clock(), name)
            taken[name] = [row.subscriber_id for row in got.rows]

        return job

    def conflicts(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.startswith("INSERT INTO deliveries") and "ON CONFLICT" in statement:
            careful.append(statement)

    event.listen(newsletter.engine, "before_cursor_execute", conflicts)
    try:
        if newsletter.engine.dialect.name == "postgresql":
            _race(newsletter, claim("first"), "INSERT INTO deliveries", claim("second"))
        else:  # one writer at a time: the second waits for its turn before it starts
            claim("first")()
            claim("second")()
    finally:
        event.remove(newsletter.engine, "before_cursor_execute", conflicts)
    ids = sorted(subscriber for subscriber, _ in _rows(newsletter) if subscriber is not None)
    assert taken == {"first": ids[:2], "second": ids[2:4]}
    assert careful == []  # no collision: the second never had to insert around the first
