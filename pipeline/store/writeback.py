"""A sender's write-backs (outcomes, rows given back), matched by its claim token.

A row id alone is not enough: once a claim is expired and the owner requeues
it (``send --resend-uncertain``), another sender claims the same rows under a
new token, and the first sender's late write must not touch them. So every
write-back names the claim token, and counts what it changed.

The common case is one UPDATE (or one executemany) on rows still ``sending``.
Only when that matched fewer rows than expected does a second, rarer UPDATE
look for rows expired to ``uncertain`` under the same token: their own sender
is reporting what became of them, and the ledger takes its word.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    BindParameter,
    Connection,
    Table,
    Update,
    bindparam,
    delete,
    exists,
    literal,
    update,
)

from pipeline.store.db import rowcount
from pipeline.store.models import Delivery, DeliveryStatus, InFlightClaim
from pipeline.store.row_conditions import back_to_pending, status_is

if TYPE_CHECKING:
    from pipeline.store.claims import Claim

log = logging.getLogger("pipeline.ledger")


@dataclass(frozen=True)
class OutcomeGroup:
    """Claimed rows that ended the same way: one final state, message id and error."""

    status: DeliveryStatus
    delivery_ids: tuple[int, ...]
    message_id: str | None = None
    error: str | None = None
    failure_kind: str | None = None  # why a failed group failed (transports.base.FailureKind)


#: The columns an outcome writes: none of them indexed, so on PostgreSQL the
#: write is a HOT update (migration 0019). The claim token stays on the row.
_RECORDED = ("status", "message_id", "error", "sent_at", "failure_kind")


def _table() -> Table:
    table = Delivery.__table__
    assert isinstance(table, Table)
    return table


def _outcome(group: OutcomeGroup, now: datetime) -> dict[str, Any]:
    """The values of :data:`_RECORDED` for a group, as the statements below bind them."""
    return {
        "new_status": group.status,
        "new_message_id": group.message_id,
        "new_error": group.error,
        "new_sent_at": now if group.status == DeliveryStatus.SENT else None,
        "new_failure_kind": group.failure_kind,
    }


def _outcome_statements(current: DeliveryStatus) -> dict[str, Update]:
    """Outcome writes onto rows ``current`` under a claim, built once for each state.

    ``token``: the whole claim, by token (``ix_deliveries_claim_token``).
    ``ids``: a group of rows by id (the primary key). ``row``: one row, for
    executemany (which allows bound values only). Built anew for every
    batch, a statement and its cache key cost a tenth of the write.
    """
    table = _table()
    mine = table.c.claim_token == bindparam("token")
    outcome: dict[str, BindParameter[Any]] = {k: bindparam(f"new_{k}") for k in _RECORDED}
    inline = table.c.status == literal(current.value, table.c.status.type, literal_execute=True)
    is_current = table.c.status == current.value
    return {
        "token": update(table)
        .where(table.c.campaign_id == bindparam("campaign"), mine, inline)
        .values(outcome),
        "ids": update(table)
        .where(table.c.id.in_(bindparam("ids", expanding=True)), mine, is_current)
        .values(outcome),
        "row": update(table)
        .where(table.c.id == bindparam("row_id"), mine, is_current)
        .values(outcome),
    }


_OUTCOME_WRITES = {
    state: _outcome_statements(state)
    for state in (DeliveryStatus.SENDING, DeliveryStatus.UNCERTAIN)
}


def _write_groups(
    connection: Connection,
    claim: Claim,
    groups: Sequence[OutcomeGroup],
    now: datetime,
    current: DeliveryStatus,
    by_token: bool,
) -> int:
    """Write each group's outcome onto its rows that are ``current`` under the claim."""
    statements = _OUTCOME_WRITES[current]
    if by_token:
        # The whole claim, one outcome.
        values = {"campaign": claim.campaign_id, "token": claim.token, **_outcome(groups[0], now)}
        return rowcount(connection.execute(statements["token"], values))
    matched = 0
    singles = []
    for group in groups:
        if len(group.delivery_ids) == 1:
            singles.append(
                {"row_id": group.delivery_ids[0], "token": claim.token, **_outcome(group, now)}
            )
            continue
        values = {"ids": list(group.delivery_ids), "token": claim.token, **_outcome(group, now)}
        matched += rowcount(connection.execute(statements["ids"], values))
    if singles:
        matched += rowcount(connection.execute(statements["row"], singles))
    return matched


def record_outcomes(
    connection: Connection, claim: Claim, groups: Sequence[OutcomeGroup], now: datetime
) -> None:
    """Store final outcomes of a claim's rows; see the module docstring."""
    expected = sum(len(group.delivery_ids) for group in groups)
    # By token only for a whole claim: a part's token also names its other parts' rows.
    by_token = claim.whole and len(groups) == 1 and expected == len(claim.rows)
    matched = _write_groups(connection, claim, groups, now, DeliveryStatus.SENDING, by_token)
    if matched < expected:
        taken_back = _write_groups(
            connection, claim, groups, now, DeliveryStatus.UNCERTAIN, by_token
        )
        if taken_back:
            outcomes = sorted({group.status.value for group in groups})
            log.warning(
                "campaign %d: %d row(s) expired as uncertain settled by their own sender (%s)",
                claim.campaign_id,
                taken_back,
                ", ".join(outcomes),
            )
        matched += taken_back
    if matched < expected:
        log.warning(
            "campaign %d: outcome of %d row(s) not recorded: no longer under this claim",
            claim.campaign_id,
            expected - matched,
        )
    whole = claim.whole and expected == len(claim.rows)
    _settle(connection, claim, everything=whole and matched == expected)


#: A claim's row in ``in_flight_claims`` goes with its last row in flight.
_SETTLE = (
    delete(InFlightClaim)
    .where(InFlightClaim.token == bindparam("token"))
    .where(
        ~exists().where(
            Delivery.campaign_id == bindparam("campaign"),
            Delivery.claim_token == bindparam("token"),
            Delivery.claim_token.is_not(None),
            status_is(DeliveryStatus.SENDING),
        )
    )
)
_SETTLE_ALL = delete(InFlightClaim).where(InFlightClaim.token == bindparam("token"))


def _settle(connection: Connection, claim: Claim, *, everything: bool) -> None:
    """Drop the claim from ``in_flight_claims`` once none of its rows is in flight.

    ``everything``: this write settled every row the claim took, so no row
    needs looking at (a send's usual case: one primary-key delete).
    """
    values = {"token": claim.token, "campaign": claim.campaign_id}
    connection.execute(_SETTLE_ALL if everything else _SETTLE, values)


def release_rows(connection: Connection, claim: Claim, delivery_ids: Sequence[int] | None) -> None:
    """Give a claim's rows back to ``pending`` (nothing was handed over for them)."""
    table = _table()
    if delivery_ids is None and not claim.whole:
        delivery_ids = [row.delivery_id for row in claim.rows]  # this part's rows only
    expected = len(claim.rows) if delivery_ids is None else len(delivery_ids)
    released = 0
    for current in (DeliveryStatus.SENDING, DeliveryStatus.UNCERTAIN):
        if released >= expected:
            break
        status = table.c.status == literal(current.value, table.c.status.type, literal_execute=True)
        where = [table.c.campaign_id == claim.campaign_id, table.c.claim_token == claim.token]
        if delivery_ids is not None:
            where.append(table.c.id.in_(delivery_ids))
        matched = rowcount(
            connection.execute(update(table).where(*where, status).values(back_to_pending()))
        )
        if matched and current is DeliveryStatus.UNCERTAIN:
            log.warning(
                "campaign %d: %d row(s) expired as uncertain given back by their own sender"
                " (never handed over)",
                claim.campaign_id,
                matched,
            )
        released += matched
    if released < expected:
        log.warning(
            "campaign %d: %d row(s) not given back: no longer under this claim",
            claim.campaign_id,
            expected - released,
        )
    _settle(connection, claim, everything=False)
