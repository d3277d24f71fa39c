"""The confirmation outbox: sign-ups waiting for the background sender.

The web form only ever calls :func:`enqueue` (one insert, whatever the
address), so neither its answer nor its timing depends on who is on the
list. :mod:`pipeline.web.confirm_sender` takes due rows with
:func:`claim_due`, and ends each with :func:`finish` or :func:`retry_later`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session, sessionmaker

from pipeline.store.db import rowcount
from pipeline.store.models import ConfirmationOutbox

_MAX_ERROR = 500


@dataclass(frozen=True)
class QueuedConfirmation:
    """One queued sign-up, detached from the database."""

    id: int
    email: str
    first_name: str | None
    source: str
    requested_at: datetime
    attempts: int
    subscriber_id: int | None
    reserved_at: datetime | None


def enqueue(
    sessions: sessionmaker[Session],
    email: str,
    first_name: str | None,
    now: datetime,
    *,
    source: str,
) -> None:
    """Queue a sign-up for ``email`` (normalized); due at once."""
    with sessions.begin() as session:
        session.add(
            ConfirmationOutbox(
                email=email,
                first_name=first_name,
                source=source,
                requested_at=now,
                next_attempt_at=now,
                attempts=0,
            )
        )


def claim_due(
    sessions: sessionmaker[Session], now: datetime, *, lease: timedelta, limit: int
) -> list[QueuedConfirmation]:
    """Up to ``limit`` rows due at ``now``, oldest first, each taken for ``lease``.

    Taking a row moves its ``next_attempt_at`` ahead only if nobody moved it
    first, so two senders (two ``serve`` processes) never both take it; a
    sender that dies holding a row lets it fall due again after the lease.
    """
    taken: list[QueuedConfirmation] = []
    with sessions.begin() as session:
        rows = session.scalars(
            select(ConfirmationOutbox)
            .where(ConfirmationOutbox.next_attempt_at <= now)
            .order_by(ConfirmationOutbox.next_attempt_at, ConfirmationOutbox.id)
            .limit(limit)
        ).all()
        for row in rows:
            moved = session.execute(
                update(ConfirmationOutbox)
                .where(
                    ConfirmationOutbox.id == row.id,
                    ConfirmationOutbox.next_attempt_at == row.next_attempt_at,
                )
                .values(next_attempt_at=now + lease),
                execution_options={"synchronize_session": False},
            )
            if rowcount(moved) == 1:
                taken.append(_record(row))
    return taken


def mark_reserved(
    session: Session, item_id: int, subscriber_id: int, reserved_at: datetime
) -> None:
    """Remember the reservation a row made, so a retry resends it (caller's transaction)."""
    session.execute(
        update(ConfirmationOutbox)
        .where(ConfirmationOutbox.id == item_id)
        .values(subscriber_id=subscriber_id, reserved_at=reserved_at),
        execution_options={"synchronize_session": False},
    )


def drop(session: Session, item_id: int) -> None:
    """Remove a row in the caller's transaction (nothing was due for it)."""
    session.execute(delete(ConfirmationOutbox).where(ConfirmationOutbox.id == item_id))


def finish(sessions: sessionmaker[Session], item_id: int) -> None:
    """The email left (or will never be due): the row is done."""
    with sessions.begin() as session:
        drop(session, item_id)


def retry_later(
    sessions: sessionmaker[Session], item_id: int, attempts: int, at: datetime, error: str
) -> None:
    """Sending failed: try again at ``at``."""
    with sessions.begin() as session:
        session.execute(
            update(ConfirmationOutbox)
            .where(ConfirmationOutbox.id == item_id)
            .values(attempts=attempts, next_attempt_at=at, last_error=error[:_MAX_ERROR]),
            execution_options={"synchronize_session": False},
        )


def pending(sessions: sessionmaker[Session]) -> list[QueuedConfirmation]:
    """Every queued row, oldest first (for tests and the dashboard)."""
    with sessions() as session:
        rows = session.scalars(select(ConfirmationOutbox).order_by(ConfirmationOutbox.id)).all()
        return [_record(row) for row in rows]


def _record(row: ConfirmationOutbox) -> QueuedConfirmation:
    return QueuedConfirmation(
        id=row.id,
        email=row.email,
        first_name=row.first_name,
        source=row.source,
        requested_at=row.requested_at,
        attempts=row.attempts,
        subscriber_id=row.subscriber_id,
        reserved_at=row.reserved_at,
    )
