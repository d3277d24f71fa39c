"""A campaign's audience: fixed when it is planned, its ledger rows written when claimed.

Planning used to write one ``pending`` row per person, which each claim then
rewrote to ``sending`` and each outcome a third time. On PostgreSQL every
write is a new row version with an entry in every index: that, not sending,
was most of a send's database work (100,000 rows: 2.2-2.9 s of ledger SQL,
1.1 s this way). So the plan writes down *who* is in the campaign, and each
claim writes its people's rows, already ``sending`` under its token:

* ``campaigns.audience_bound`` is the highest subscriber id when the campaign
  was planned: nobody who joins later is in it (``send --include-new`` adds
  them, as before). ``campaign_exclusions`` lists the subscribers up to it who
  were not in the audience then (not active, or left out by a series part's
  rule: :func:`pipeline.store.catch_up.live_keep`); a list that is mostly
  active writes few.
* ``campaigns.claimed_through`` is how far claims have got. A claim takes
  the next people past it (:func:`claim_people`), inserts their rows and
  moves it, in one transaction that locks the campaign's row, so two senders
  never take the same people. Someone who left since the plan gets a
  ``suppressed`` row, never an email, as before (before a claim reaches them:
  :mod:`pipeline.store.leavers`).
* Until every person has a row, the people past ``claimed_through`` count as
  pending (:func:`unclaimed`) for every reader of the counts, and the
  campaign stays open: it is neither finished nor forgotten by a worker, and
  a crash loses nobody (the next run goes on from there).

Rows that already exist (given back, requeued, added by ``--include-new`` or
by the catch-up pass) are claimed as before (:mod:`pipeline.store.claims`),
once every person has a row. A campaign planned before this (both columns
NULL) has all its rows.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import (
    ColumnElement,
    Executable,
    Integer,
    String,
    and_,
    bindparam,
    case,
    delete,
    exists,
    func,
    insert,
    literal,
    not_,
    select,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from pipeline.store.db import insert_new_only, rowcount
from pipeline.store.ledger_links import hold_out_erasure, locking_audience
from pipeline.store.models import (
    Campaign,
    CampaignExclusion,
    Delivery,
    DeliveryStatus,
    Subscriber,
    SubscriberStatus,
)


class Taken(NamedTuple):
    """What one claim of people did: rows inserted (``suppressed`` too), people passed."""

    rows: int
    passed: int


def has_unclaimed() -> ColumnElement[bool]:
    """For a query on ``campaigns``: some people of the audience have no row yet."""
    return and_(
        Campaign.audience_bound.is_not(None),
        func.coalesce(Campaign.claimed_through, 0) < Campaign.audience_bound,
    )


def awaits_claim(campaign_ids: Any) -> ColumnElement[bool]:
    """For a query on ``subscribers``: in one of these campaigns' audiences, with no row yet.

    To the catch-up track such a person holds the part as surely as one with
    a row: their live email is on its way.
    """
    return exists().where(Campaign.id.in_(campaign_ids), unreached())


def unreached() -> ColumnElement[bool]:
    """A ``campaigns`` row and a ``subscribers`` row: in its audience, and no claim yet."""
    return and_(
        has_unclaimed(),
        Subscriber.id > func.coalesce(Campaign.claimed_through, 0),
        Subscriber.id <= Campaign.audience_bound,
        _in_audience(Campaign.id),
    )


def fix_audience(session: Session, campaign_id: int, keep: ColumnElement[bool] | None) -> None:
    """At planning, in the campaign's transaction: its bound, and who up to it is left out."""
    bound = session.scalar(select(func.max(Subscriber.id)))
    if bound is None:  # nobody on the list: the campaign has all (none) of its rows
        return
    wanted = Subscriber.status == SubscriberStatus.ACTIVE
    if keep is not None:
        wanted = and_(wanted, keep)
    left_out = select(literal(campaign_id, Integer), Subscriber.id).where(
        Subscriber.id <= bound, not_(wanted)
    )
    session.execute(
        insert(CampaignExclusion).from_select(["campaign_id", "subscriber_id"], left_out)
    )
    session.execute(
        update(Campaign)
        .where(Campaign.id == campaign_id)
        .values(audience_bound=bound, claimed_through=0)
    )


def _in_audience(campaign_id: Any) -> ColumnElement[bool]:
    return ~exists().where(
        CampaignExclusion.campaign_id == campaign_id,
        CampaignExclusion.subscriber_id == Subscriber.id,
    )


def _claim_statements(dialect: str) -> dict[str, Executable]:
    """The statements of :func:`claim_people`, built once per dialect, values bound per claim.

    Built anew for every claim, they cost more Python than the claim's SQL
    (as the older claim's did: pipeline.store.claims).
    """
    campaign = bindparam("campaign", type_=Integer)

    def people(upto: str) -> ColumnElement[bool]:
        # One upper bound only: given two, SQLite ranges the primary key by the
        # first and filters by the other, reading up to the end of the list.
        return and_(
            Subscriber.id > bindparam("after", type_=Integer),
            Subscriber.id <= bindparam(upto, type_=Integer),
            _in_audience(campaign),
        )

    active = Subscriber.status == SubscriberStatus.ACTIVE
    rows = (
        select(
            campaign,
            Subscriber.id,
            # Someone who left since the plan is suppressed, never mailed.
            case(
                (active, literal(DeliveryStatus.SENDING.value, String)),
                else_=literal(DeliveryStatus.SUPPRESSED.value, String),
            ),
            case((active, bindparam("token", type_=String)), else_=None),
            bindparam("now", type_=Delivery.claimed_at.type),
            bindparam("owner", type_=Delivery.claimed_by.type),
            literal(1, Integer),
        )
        .where(people("upto"))
        .order_by(Subscriber.id)
    )
    columns = ["campaign_id", "subscriber_id", "status", "claim_token", "claimed_at"]
    # What a claim needs to know, read with the campaign's row locked, in one
    # statement (each round trip is time the next sender waits for the lock):
    # how far claims have got, the last of the next ``size`` people (read
    # through the primary key alone), and the first row already written for
    # someone past that point (see "insert_new_only").
    claimed = func.coalesce(Campaign.claimed_through, 0)
    last = (
        select(Subscriber.id)
        .where(
            Subscriber.id > claimed,
            Subscriber.id <= Campaign.audience_bound,
            _in_audience(campaign),
        )
        .order_by(Subscriber.id)
        .offset(bindparam("skip", type_=Integer))
        .limit(1)
        .correlate(Campaign)
        .scalar_subquery()
    )
    first_row = (
        select(func.min(Delivery.subscriber_id))
        .where(
            Delivery.campaign_id == Campaign.id,
            Delivery.subscriber_id > claimed,
            Delivery.subscriber_id <= Campaign.audience_bound,
        )
        .correlate(Campaign)
        .scalar_subquery()
    )
    return {
        "state": select(Campaign.audience_bound, Campaign.claimed_through)
        .where(Campaign.id == campaign)
        .with_for_update(),
        "next": select(
            Campaign.audience_bound,
            Campaign.claimed_through,
            last.label("last"),
            first_row.label("first_row"),
        )
        .where(Campaign.id == campaign)
        .with_for_update(of=Campaign),
        # No lock on each person read (ledger_links' rule for other writers):
        # a claim holds the ledger's shared claim lock, which erasure waits for.
        "insert": insert(Delivery).from_select([*columns, "claimed_by", "attempts"], rows),
        # A row may be there already for someone the claims had not reached: a
        # catch-up send of this article, or a suppressed row (they left). Then
        # the unique key keeps theirs. Not always: on PostgreSQL ``ON CONFLICT``
        # costs a speculative insertion per row, an eighth of a send's database time.
        "insert_new_only": insert_new_only(dialect, Delivery).from_select(
            [*columns, "claimed_by", "attempts"], rows
        ),
        "advance": update(Campaign)
        .where(Campaign.id == campaign)
        .values(claimed_through=bindparam("upto", type_=Integer)),
    }


_CLAIM_STATEMENTS = {dialect: _claim_statements(dialect) for dialect in ("sqlite", "postgresql")}


def _locked_state(connection: Connection, campaign_id: int) -> tuple[int, int] | None:
    """(audience_bound, claimed_through) with the campaign's row locked; None: all rows written."""
    statement = _CLAIM_STATEMENTS[connection.dialect.name]["state"]
    state = connection.execute(statement, {"campaign": campaign_id}).one_or_none()
    if state is None or state.audience_bound is None:
        return None
    return state.audience_bound, state.claimed_through or 0


def claim_people(
    session: Session,
    campaign_id: int,
    size: int,
    now: datetime,
    owner: str,
    token: str,
    *,
    careful: bool = False,
) -> Taken | None:
    """Rows for the next ``size`` people of the audience, ``sending`` under ``token``.

    None when every person has a row. Locks the campaign's row first
    (PostgreSQL; SQLite runs one writer at a time), so two senders never
    take the same people. A row written for one of them meanwhile by someone
    else (a leaver's suppressed row on PostgreSQL) fails the insert with an
    :class:`~sqlalchemy.exc.IntegrityError`; the caller then tries again
    ``careful``, skipping whatever rows exist.
    """
    connection = session.connection()
    statements = _CLAIM_STATEMENTS[connection.dialect.name]
    # Before the campaign's row: the time it is held is the time others wait.
    hold_out_erasure(connection)
    state = connection.execute(
        statements["next"], {"campaign": campaign_id, "skip": size - 1}
    ).one_or_none()
    if state is None or state.audience_bound is None:
        return None
    bound, after = state.audience_bound, state.claimed_through or 0
    if after >= bound:
        return None
    upto = bound if state.last is None else state.last
    # A row already there in the range (rare): insert around it.
    careful = careful or (state.first_row is not None and state.first_row <= upto)
    values: dict[str, Any] = {
        "campaign": campaign_id,
        "after": after,
        "upto": upto,
        "token": token,
        "now": now,
        "owner": owner,
    }
    result = connection.execute(
        statements["insert_new_only" if careful else "insert"],
        values,
        execution_options={"preserve_rowcount": True},
    )
    connection.execute(statements["advance"], {"campaign": campaign_id, "upto": upto})
    if upto >= bound:
        _forget_exclusions(session, campaign_id)
    return Taken(rows=rowcount(result), passed=upto - after)


def write_all_rows(session: Session, campaign_id: int) -> int:
    """Rows (``pending``) for every person of the audience still without one; how many.

    For ``send --include-new``, which adds whoever is not in the campaign:
    the audience's own people must be in it first.
    """
    state = _locked_state(session.connection(), campaign_id)
    if state is None:
        return 0
    bound, after = state
    added = 0
    if after < bound:
        rows = (
            select(
                literal(campaign_id, Integer),
                Subscriber.id,
                literal(DeliveryStatus.PENDING.value, String),
                literal(0, Integer),
            )
            .where(Subscriber.id > after, Subscriber.id <= bound, _in_audience(campaign_id))
            .order_by(Subscriber.id)
        )
        result = session.execute(
            insert_new_only(session.get_bind().dialect.name, Delivery).from_select(
                ["campaign_id", "subscriber_id", "status", "attempts"], locking_audience(rows)
            ),
            execution_options={"preserve_rowcount": True},
        )
        added = rowcount(result)
    session.execute(
        update(Campaign).where(Campaign.id == campaign_id).values(claimed_through=bound)
    )
    _forget_exclusions(session, campaign_id)
    return added


def unclaimed(session: Session, campaign_ids: list[int]) -> dict[int, int]:
    """People of each campaign's audience without a row yet (campaigns with none: absent).

    Three counts read from indexes (subscribers by id, exclusions and rows by
    campaign), not a probe per person: this runs when a send starts.
    """
    states = session.execute(
        select(Campaign.id, Campaign.audience_bound, Campaign.claimed_through).where(
            Campaign.id.in_(campaign_ids), has_unclaimed()
        )
    ).all()
    counts: dict[int, int] = {}
    for campaign_id, bound, claimed_through in states:
        after = claimed_through or 0
        span = and_(Subscriber.id > after, Subscriber.id <= bound)
        everyone = session.scalar(select(func.count()).select_from(Subscriber).where(span))
        excluded = session.scalar(
            select(func.count())
            .select_from(CampaignExclusion)
            .where(
                CampaignExclusion.campaign_id == campaign_id,
                CampaignExclusion.subscriber_id > after,
                CampaignExclusion.subscriber_id <= bound,
            )
        )
        # Rows already there for people not yet reached (catch-up sends, leavers'
        # suppressed rows): a range of the unique key, rarely holding any.
        with_row = session.scalar(
            select(func.count())
            .select_from(Delivery)
            .where(
                Delivery.campaign_id == campaign_id,
                Delivery.subscriber_id > after,
                Delivery.subscriber_id <= bound,
                ~exists().where(
                    CampaignExclusion.campaign_id == campaign_id,
                    CampaignExclusion.subscriber_id == Delivery.subscriber_id,
                ),
            )
        )
        counts[campaign_id] = int(everyone or 0) - int(excluded or 0) - int(with_row or 0)
    return counts


def _forget_exclusions(session: Session, campaign_id: int) -> None:
    # Every person has a row now: the list of who was left out served its purpose.
    session.execute(delete(CampaignExclusion).where(CampaignExclusion.campaign_id == campaign_id))
