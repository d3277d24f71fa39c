"""Claims on a campaign's rows: who takes the next batch, under which token.

Every state change is one guarded UPDATE (``WHERE status = <expected>``), so
two senders racing for the same rows cannot both win: the database decides,
on SQLite and PostgreSQL alike. This is the runner's hot path: one claim per
batch. A claim's lease (renewed, expired, requeued) is :mod:`pipeline.store.leases`;
what becomes of a claimed row afterwards (its outcome, or given back) is
written by :mod:`pipeline.store.writeback`.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import Insert, Select, Update, bindparam, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from pipeline.store import snapshot
from pipeline.store.db import rowcount
from pipeline.store.models import (
    Delivery,
    DeliveryStatus,
    InFlightClaim,
    Subscriber,
    SubscriberStatus,
)
from pipeline.store.row_conditions import pending, status_is
from pipeline.store.write_turns import WriteTurns
from pipeline.store.write_turns import turn as write_turn


class ClaimedRow(NamedTuple):
    """A ledger row claimed for sending, with the address it goes to.

    A named tuple (as immutable as a frozen dataclass, made in a third of the
    time): one is made per recipient, straight from the claim's result rows.
    """

    delivery_id: int
    subscriber_id: int
    email: str
    first_name: str | None
    #: The send slot of a catch-up row (its own issue: store.catch_up_issues); None: live.
    catch_up_at: datetime | None = None


@dataclass(frozen=True)
class Claim:
    """Rows one sender claimed together, under one token."""

    campaign_id: int
    token: str
    rows: list[ClaimedRow]
    #: False for one part of a claim split by :meth:`by_issue`: the token then also
    #: names the other parts' rows, so a write-back must go by row id (see writeback).
    whole: bool = True

    def by_issue(self) -> list[Claim]:
        """The claim split by the issue its rows get: live rows, then each catch-up slot.

        Same token, so each part is recorded and given back on its own, by its
        rows' ids; a claim of live rows only (the usual case) comes back whole.
        """
        slots = {row.catch_up_at for row in self.rows}
        if len(slots) == 1:
            return [self]
        ordered = sorted(slots, key=lambda slot: (slot is not None, slot or datetime.min))
        return [
            Claim(
                self.campaign_id,
                self.token,
                [r for r in self.rows if r.catch_up_at == slot],
                whole=False,
            )
            for slot in ordered
        ]


def still_wanted(sessions: sessionmaker[Session], subscriber_ids: Collection[int]) -> set[int]:
    """Of these subscribers, the ones still active: one primary-key lookup.

    A per-message transport asks this every few dozen messages of a batch,
    so that someone who leaves while a long batch is out is not mailed.
    """
    if not subscriber_ids:
        return set()
    with sessions() as session:
        rows = session.scalars(
            select(Subscriber.id).where(
                Subscriber.id.in_(list(subscriber_ids)),
                Subscriber.status == SubscriberStatus.ACTIVE,
            )
        )
        return set(rows)


def claim(
    sessions: sessionmaker[Session],
    campaign_id: int,
    size: int,
    now: datetime,
    owner: str,
    after: int = 0,
    turns: WriteTurns | None = None,
) -> Claim:
    """Up to ``size`` rows to send, ``sending`` under a fresh claim token.

    First the campaign's people who have no row yet, in subscriber order:
    their rows are written now, already ``sending``
    (:func:`pipeline.store.snapshot.claim_people`). Once everyone has a row,
    rows still ``pending`` (given back, requeued, added later) are moved to
    ``sending`` by a guarded UPDATE, the whole concurrency story there: a row
    another sender claimed first no longer matches ``status = 'pending'``.
    When a race leaves this sender with nothing while rows are still
    pending, it tries again, so an empty claim really means the campaign has
    nobody and no row left to send.

    ``after`` (the last row id this sender claimed) starts the search past
    the rows already sent. PostgreSQL may walk the primary key from the
    start when its statistics still say every row is pending (they do,
    until autovacuum next analyzes), and each claim would then step over
    all the rows sent so far. Nothing past ``after``: the search starts
    again from the beginning, for rows given back or skipped meanwhile.

    Rows taken but all suppressed (everyone in them left) say nothing
    about the rest, so the search goes on at once: however long a run of
    suppressed rows, an empty claim means no row is pending.

    ``turns`` (SQLite: :mod:`pipeline.store.write_turns`) is taken for each
    write transaction only, not while the claimed rows are read.
    """
    careful = False
    while True:
        try:
            claimed, taken = _claim_once(
                sessions, campaign_id, size, now, owner, after, turns, careful
            )
        except IntegrityError:
            if careful:
                raise
            careful = True  # someone wrote a row for one of these people meanwhile
            continue
        if claimed.rows:
            return claimed
        if taken > 0:
            continue  # every person or row taken was suppressed: on to the next
        if after:
            after = 0
            continue
        if not _has_pending(sessions, campaign_id):
            return claimed


def _has_pending(sessions: sessionmaker[Session], campaign_id: int) -> bool:
    """Whether rows are still pending, once claims running elsewhere have settled.

    A claim skips rows another sender is claiming at that moment (SKIP
    LOCKED), so an empty claim can mean "someone else is taking the last
    rows". Locking without SKIP waits for that claim to commit, then sees
    the truth, however quickly the caller asks again.
    """
    with sessions.begin() as session:
        first = session.scalar(
            select(Delivery.id)
            .where(Delivery.campaign_id == campaign_id, pending())
            .limit(1)
            .with_for_update()
        )
        return first is not None


def _claim_statement() -> Update:
    """Up to ``size`` pending rows past ``after`` to sending, under a new token.

    Built once (see :data:`_CLAIM`), its values bound at each claim.
    """
    claimable = (
        select(Delivery.id)
        .where(
            Delivery.campaign_id == bindparam("campaign"),
            pending(),
            Delivery.id > bindparam("after"),
        )
        .order_by(Delivery.id)
        .limit(bindparam("size"))
        # PostgreSQL: concurrent workers skip each other's rows instead of
        # queueing behind them. SQLite renders no FOR UPDATE; its single
        # writer makes the guarded UPDATE below enough.
        .with_for_update(skip_locked=True)
        # MATERIALIZED: evaluated once. Folded into the UPDATE as a plain
        # subquery, PostgreSQL may re-run it and claim more than ``size``.
        # Nested inside the IN (...): Python's sqlite3 reports no rowcount
        # (-1) for a statement that starts with WITH, and the count taken
        # tells a claim whose rows were all suppressed from an empty one.
        .cte("claimable", nesting=True)
        .prefix_with("MATERIALIZED")
    )
    return (
        update(Delivery)
        .where(
            Delivery.id.in_(select(claimable.c.id)),
            Delivery.status == DeliveryStatus.PENDING,
            Delivery.claimed_at.is_(None),
        )
        .values(
            status=DeliveryStatus.SENDING,
            claim_token=bindparam("new_token", type_=Delivery.claim_token.type),
            claimed_at=bindparam("new_claimed_at", type_=Delivery.claimed_at.type),
            claimed_by=bindparam("new_claimed_by", type_=Delivery.claimed_by.type),
            attempts=Delivery.attempts + 1,
        )
    )


def _claimed_statement() -> Select[int, int, str, str | None, datetime | None]:
    """The rows a claim took whose subscriber is still active, with what a message needs."""
    return (
        select(
            Delivery.id,
            Subscriber.id,
            Subscriber.email,
            Subscriber.first_name,
            Delivery.catch_up_at,
        )
        .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
        .where(
            Delivery.campaign_id == bindparam("campaign"),
            Delivery.claim_token == bindparam("token"),
            status_is(DeliveryStatus.SENDING),
            Subscriber.status == SubscriberStatus.ACTIVE,
        )
        .order_by(Delivery.id)
    )


def _hold_statement() -> Insert:
    """The claim's row in ``in_flight_claims``, written with its rows' move to ``sending``."""
    return insert(InFlightClaim).values(
        token=bindparam("token"),
        campaign_id=bindparam("campaign"),
        claimed_by=bindparam("owner"),
        claimed_at=bindparam("now", type_=InFlightClaim.claimed_at.type),
    )


# The hot path's statements, built once: building them anew for every
# batch (and its cache key) cost about as much as reading the 1,000 rows.
_CLAIM = _claim_statement()
_CLAIMED = _claimed_statement()
_HOLD = _hold_statement()
_UNHOLD = delete(InFlightClaim).where(InFlightClaim.token == bindparam("token"))


def _claim_once(
    sessions: sessionmaker[Session],
    campaign_id: int,
    size: int,
    now: datetime,
    owner: str,
    after: int,
    turns: WriteTurns | None,
    careful: bool = False,
) -> tuple[Claim, int]:
    """One guarded claim: the rows to send, and how many rows it took (suppressed too)."""
    token = uuid.uuid4().hex
    with write_turn(turns), sessions.begin() as session:
        connection = session.connection()
        # The claim's row first, in the same transaction: a row in ``sending``
        # always has its claim listed, or nothing would ever expire it or keep
        # its campaign open. First, because claim_people then holds the
        # campaign's row until commit: every statement after it makes the next
        # sender wait.
        connection.execute(
            _HOLD, {"token": token, "campaign": campaign_id, "owner": owner, "now": now}
        )
        people = snapshot.claim_people(
            session, campaign_id, size, now, owner, token, careful=careful
        )
        if people is not None:
            # Rows written; people passed who already had one (or left) count as taken.
            taken = max(people.rows, 1 if people.passed else 0)
        else:
            # Core execution: plain rows, no ORM bookkeeping on the hot path.
            taken = rowcount(
                connection.execute(
                    _CLAIM,
                    {
                        "campaign": campaign_id,
                        "after": after,
                        "size": size,
                        "new_token": token,
                        "new_claimed_at": now,
                        "new_claimed_by": owner,
                    },
                )
            )
        if not taken:
            connection.execute(_UNHOLD, {"token": token})
    if not taken:
        return Claim(campaign_id=campaign_id, token=token, rows=[]), 0
    # Read once the claim is committed, so writers wait on it the shortest
    # time: the rows are ours now (in flight under our token) however long
    # this takes, and the subscribers' state read is only fresher.
    with sessions() as session:
        result = session.connection().execute(_CLAIMED, {"campaign": campaign_id, "token": token})
        claimed = [ClaimedRow._make(row) for row in result.all()]  # columns in field order
    if len(claimed) < taken:
        # Checked here, per batch, rather than over the whole campaign: someone
        # who left (or was erased) since planning is suppressed, never mailed.
        # Should this process die first, those rows stay in flight and are
        # reported uncertain: never mailed either.
        # Exactly the rows not read above: one read above goes out, even if
        # its subscriber leaves this very moment (the next claim catches that).
        kept = [row.delivery_id for row in claimed]
        with write_turn(turns), sessions.begin() as session:
            session.connection().execute(
                update(Delivery)
                .where(
                    Delivery.campaign_id == campaign_id,
                    Delivery.claim_token == token,
                    status_is(DeliveryStatus.SENDING),
                    Delivery.id.not_in(kept),
                )
                .values(status=DeliveryStatus.SUPPRESSED, claim_token=None)
            )
            if not claimed:
                session.connection().execute(_UNHOLD, {"token": token})
    return Claim(campaign_id=campaign_id, token=token, rows=claimed), taken
