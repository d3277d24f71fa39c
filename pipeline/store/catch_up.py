"""The catch-up track's SQL: which parts late joiners get today, and who a live part skips.

Design (README, "Catch-up track"). A catch-up send is an ordinary ledger row
of the article's own campaign, with ``catch_up_at`` set to the send slot it
was planned for. So:

* ``uq_deliveries_campaign_subscriber`` (one campaign per article) is the
  database's "each article reaches each person at most once, ever": a live
  snapshot, ``--include-new``, a catch-up send and a resend (which only moves
  an existing row back to ``pending``) all land on that one key.
* The runner sends catch-up rows exactly as live ones: claimed (``sending``)
  before anything is handed over, ``uncertain`` after a crash, never resent
  blind, ``suppressed`` if the person left meanwhile.
* Rows are inserted only on the day they are due, so a live run never meets a
  row "not yet due": every pending row of a campaign may go now.

Where a person stands in a series is read from the ledger alone, never from
sign-up dates: the parts sent so far (campaigns, in part order) and which of
them the person has a row for, in any state. A person on no part's snapshot
(they joined, or came back, after it was planned) is behind; one who has
every part is caught up, and people who joined before part 1 are always that.

Each series and part is one ``INSERT ... SELECT`` over the subscribers (no
per-person loop in Python); all of them run in one transaction, in order, so
a person given a part by an earlier statement already has "an email today"
and no later statement (another series) picks them again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import (
    Integer,
    String,
    and_,
    case,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    true,
)
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql.elements import ColumnElement

from pipeline.content.reserved import WELCOME_SLUG
from pipeline.render import RenderedIssue
from pipeline.store.catch_up_issues import store_issues
from pipeline.store.db import refresh_statistics, rowcount
from pipeline.store.ledger_links import locking_audience
from pipeline.store.models import (
    Campaign,
    Delivery,
    DeliveryStatus,
    Subscriber,
    SubscriberStatus,
)
from pipeline.store.snapshot import awaits_claim

#: A catch-up row counts as "too recent" for the spacing only when later than
#: ``slot - every`` by this much: a clock change moves yesterday's slot by an
#: hour in UTC, and that must not push a "2d" send to the third day.
SLACK = timedelta(hours=2)
#: Any constant: the PostgreSQL advisory lock that lets one pass plan at a time.
_PG_PASS_LOCK = 7_414_021


@dataclass(frozen=True)
class Day:
    """One local day in the clinic's timezone, as UTC bounds, and its send slot."""

    start: datetime
    end: datetime
    slot: datetime


@dataclass(frozen=True)
class SeriesTrack:
    """A series as the pass sees it: its sent parts' campaigns, in part order, and settings."""

    series: str
    campaign_ids: tuple[int, ...]
    every: timedelta
    limit: int


@dataclass(frozen=True)
class CatchUpRow:
    """A catch-up send planned by a pass: which campaign (part), to whom."""

    campaign_id: int
    subscriber_id: int
    email: str


def _has_row(campaign_ids: Sequence[int]) -> ColumnElement[bool]:
    """The subscriber (of the outer query) has a row, in any state, in one of these.

    Or is in one's audience with no row yet: a claim will write it
    (:mod:`pipeline.store.snapshot`), their live email is on its way.
    """
    row = Delivery
    return or_(
        exists().where(row.subscriber_id == Subscriber.id, row.campaign_id.in_(campaign_ids)),
        awaits_claim(list(campaign_ids)),
    )


def _emailed_on(day: Day) -> ColumnElement[bool]:
    """The subscriber has a newsletter email on ``day``: sent, planned live, or caught up.

    The welcome email is not a newsletter issue: someone who joins before the
    send time gets it at once and their first part at the send time.
    """
    row = Delivery
    planned_live_today = select(Campaign.id).where(
        Campaign.created_at >= day.start, Campaign.created_at < day.end
    )
    welcome = select(Campaign.id).where(Campaign.slug == WELCOME_SLUG).scalar_subquery()
    emailed = exists().where(
        row.subscriber_id == Subscriber.id,
        row.campaign_id != func.coalesce(welcome, -1),
        or_(
            and_(row.catch_up_at >= day.start, row.catch_up_at < day.end),
            and_(row.sent_at >= day.start, row.sent_at < day.end),
            and_(row.catch_up_at.is_(None), row.campaign_id.in_(planned_live_today)),
        ),
    )
    # In the audience of a live part planned today that has not reached them yet.
    return or_(emailed, awaits_claim(planned_live_today))


def live_keep(previous_campaign_id: int | None, day: Day) -> ColumnElement[bool]:
    """Who a live part of a catch-up series reaches (the snapshot's extra condition).

    Skipped: anyone behind (no row for the previous part sent: they get this
    part on their own track, in order), and anyone who had a catch-up email
    today (one email a day; this part reaches them on their track later).
    """
    row = Delivery
    # A set read once from ix_deliveries_catch_up (today's catch-up rows,
    # usually none), not an EXISTS asked for each subscriber through all of
    # their rows. NOT NULL: one NULL in a NOT IN set would keep everyone out.
    caught_up_today = Subscriber.id.in_(
        select(row.subscriber_id).where(
            row.catch_up_at >= day.start,
            row.catch_up_at < day.end,
            row.subscriber_id.is_not(None),
        )
    )
    if previous_campaign_id is None:
        return ~caught_up_today
    return and_(_has_row([previous_campaign_id]), ~caught_up_today)


def due_for_part(track: SeriesTrack, index: int, day: Day) -> ColumnElement[bool]:
    """Whether part ``index`` (0-based among the sent parts) is this subscriber's next today.

    With ``h`` the last part they hold and ``c`` their catch-up sends of the
    series so far, the next part is ``max(h + 1, n - budget + 1)`` where
    ``budget = max(limit - c, 1)``: oldest first, and never more than
    ``limit`` parts in all (the most recent ones: an early part is skipped
    when the rest would not fit). Never a part before one they already hold.
    """
    ids = list(track.campaign_ids)
    row = Delivery
    too_recent = exists().where(
        row.subscriber_id == Subscriber.id,
        row.campaign_id.in_(ids),
        row.catch_up_at > day.slot - track.every + SLACK,
    )
    conditions = [
        Subscriber.status == SubscriberStatus.ACTIVE,
        ~_has_row(ids[index:]),  # nothing from this part on: never out of order
        ~too_recent,
        ~_emailed_on(day),
    ]
    if track.limit >= len(ids):
        # The limit cannot bind (see _within_budget): "oldest first" alone
        # decides, and no per-person count is needed. This is the common case
        # (default limit 10), and it lets the planner use hash joins throughout.
        if index > 0:
            conditions.append(_has_row([ids[index - 1]]))
        return and_(*conditions)
    remaining = len(ids) - index  # this part and the ones after it
    if index == 0:
        conditions.append(_within_budget(ids, track.limit, remaining, exact=False))
    else:
        holds_previous = _has_row([ids[index - 1]])
        conditions.append(
            or_(
                and_(holds_previous, _within_budget(ids, track.limit, remaining, exact=False)),
                and_(~holds_previous, _within_budget(ids, track.limit, remaining, exact=True)),
            )
        )
    return and_(*conditions)


def _within_budget(
    ids: Sequence[int], limit: int, remaining: int, *, exact: bool
) -> ColumnElement[bool]:
    """``budget >= remaining`` (``exact``: ``==``), with ``budget = max(limit - c, 1)``.

    Solved for ``c`` (the person's catch-up sends of the series) in Python, so
    the SQL compares one count with a constant: as ``max(...)`` (a ``CASE``)
    the database ran the per-person count twice per row, and PostgreSQL's
    cost estimate of that was high enough to JIT-compile every statement.

    Why the caller may skip this when ``limit >= len(ids)``: a person due
    part ``index`` holds nothing from it on, so ``c <= index`` (one row per
    part), hence ``limit - c >= len(ids) - index = remaining``: always enough
    when they hold the previous part, and when they do not, ``c <= index - 1``
    makes the budget exceed ``remaining``, so never exactly equal.
    """
    caught = (
        select(func.count())
        .where(
            Delivery.subscriber_id == Subscriber.id,
            Delivery.campaign_id.in_(ids),
            Delivery.catch_up_at.is_not(None),
        )
        .scalar_subquery()
    )
    if not exact:  # max(limit - c, 1) >= remaining
        return true() if remaining <= 1 else caught <= limit - remaining
    if remaining == 1:  # max(limit - c, 1) == 1
        return caught >= limit - 1
    return caught == limit - remaining  # remaining > 1: only limit - c can equal it


def lock_pass(connection: Connection) -> None:
    """Take the pass's lock for this transaction (PostgreSQL; SQLite has one writer anyway)."""
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_PASS_LOCK})")
        # Per-person subqueries over 100,000 people look costly to the
        # planner, so it JIT-compiles each statement: measured at 0.3-1.2 s
        # of compiling per part, more than running it. This transaction only.
        connection.exec_driver_sql("SET LOCAL jit = off")


def insert_day(
    connection: Connection,
    tracks: Sequence[SeriesTrack],
    day: Day,
    later_live: ColumnElement[bool] | None = None,
) -> int:
    """The pass's inserts for ``day``, in order: one ``INSERT ... SELECT`` per series and part.

    ``later_live``: who a live issue still to go out today will reach; they
    are left for another day (one newsletter email a day). Returns how many
    rows it inserted. The caller holds :func:`lock_pass` and
    decides whether the transaction commits (the pass) or not (a dry run, the
    week's outlook in :mod:`pipeline.store.catch_up_views`).
    """
    inserted = 0
    for track in tracks:
        for index, campaign_id in enumerate(track.campaign_ids):
            audience = (
                select(
                    literal(campaign_id, Integer),
                    Subscriber.id,
                    literal(DeliveryStatus.PENDING.value, String),
                    literal(0, Integer),
                    literal(day.slot, Delivery.catch_up_at.type),
                )
                .where(due_for_part(track, index, day))
                .order_by(Subscriber.id)
            )
            if later_live is not None:
                audience = audience.where(~later_live)
            result = connection.execute(
                insert(Delivery).from_select(
                    ["campaign_id", "subscriber_id", "status", "attempts", "catch_up_at"],
                    locking_audience(audience),
                ),
                execution_options={"preserve_rowcount": True},
            )
            inserted += rowcount(result)
    return inserted


def plan_pass(
    sessions: sessionmaker[Session],
    tracks: Sequence[SeriesTrack],
    day: Day,
    *,
    dry_run: bool = False,
    issues: Callable[[Sequence[int]], Mapping[int, RenderedIssue]] | None = None,
    later_live: ColumnElement[bool] | None = None,
) -> list[CatchUpRow]:
    """Insert today's catch-up rows (pending, ``catch_up_at = day.slot``); return them.

    ``later_live`` (see :func:`insert_day`) keeps today's later live issue
    from being a second email. ``issues(campaign_ids)`` renders the catch-up
    issue of each campaign that got rows; they are stored
    (``catch_up_issues``) in the same transaction, so no sender can claim a
    row before its issue exists.

    One ``INSERT ... SELECT`` per series and part, in one transaction, under
    a lock (PostgreSQL: an advisory lock; SQLite: its single writer), so two
    passes at once cannot give a person two emails in a day. ``dry_run``
    plans the same rows and rolls them back: exactly what a real pass would do.
    A second pass on the same day finds everyone already emailed: nothing.
    """
    with sessions() as session:
        connection = session.connection()
        lock_pass(connection)
        before = int(session.scalar(select(func.coalesce(func.max(Delivery.id), 0))) or 0)
        inserted = insert_day(connection, tracks, day, later_live)
        planned = [
            CatchUpRow(campaign_id=c, subscriber_id=s, email=e)
            for c, s, e in connection.execute(
                select(Delivery.campaign_id, Subscriber.id, Subscriber.email)
                .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
                .where(Delivery.id > before, Delivery.catch_up_at == day.slot)
                .order_by(Delivery.campaign_id, Delivery.id)
            )
        ]
        if dry_run:
            session.rollback()
        else:
            if issues is not None and planned:
                store_issues(connection, day.slot, {row.campaign_id for row in planned}, issues)
            session.commit()
    if inserted and not dry_run:
        refresh_statistics(sessions, "deliveries")
    return planned


@dataclass(frozen=True)
class CatchUpCount:
    """Catch-up rows of one campaign: how many, and how many sent."""

    campaign_id: int
    planned: int
    sent: int


def catch_up_counts(sessions: sessionmaker[Session]) -> dict[int, CatchUpCount]:
    """Per campaign (article), its catch-up rows: for ``status`` beside the live counts."""
    sent = func.sum(case((Delivery.status == DeliveryStatus.SENT, 1), else_=0))
    with sessions() as session:
        rows = session.execute(
            select(Delivery.campaign_id, func.count(), sent)
            .where(Delivery.catch_up_at.is_not(None))
            .group_by(Delivery.campaign_id)
        )
        return {
            c: CatchUpCount(campaign_id=c, planned=int(n), sent=int(s or 0)) for c, n, s in rows
        }


def campaign_ids_by_slug(sessions: sessionmaker[Session]) -> dict[str, int]:
    """Every campaign's id by its article's slug (which parts of a series went out)."""
    with sessions() as session:
        return {slug: cid for slug, cid in session.execute(select(Campaign.slug, Campaign.id))}


def campaigns_due(sessions: sessionmaker[Session], slot: datetime) -> list[int]:
    """Campaigns with catch-up rows for ``slot`` still open (pending, or in flight), oldest first.

    In flight too: a pass that crashed mid-batch left them so, and the run
    that follows marks them ``uncertain`` (never resent blind).
    """
    open_states = [DeliveryStatus.PENDING, DeliveryStatus.SENDING]
    with sessions() as session:
        rows = session.scalars(
            select(Delivery.campaign_id)
            .where(Delivery.catch_up_at == slot, Delivery.status.in_(open_states))
            .distinct()
            .order_by(Delivery.campaign_id)
        )
        return list(rows)
