"""The statements behind the subscriber list (:mod:`pipeline.subscribers`).

Lookups by address or id, keyset pages for listing, the bulk insert an import
writes per chunk, and turning pending ledger rows of people who left into
``suppressed``. The rules (consent, merging, erasure) stay with the callers in
:mod:`pipeline.subscribers`; each function here runs inside the caller's
session, so the caller decides what is one transaction. The two functions for
the unsubscribe pages open their own short sessions, so the web routes hold no
database code at all.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, func, insert, select
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session, sessionmaker

from pipeline.store.leavers import suppress_for
from pipeline.store.models import (
    LEFT_STATUSES,
    Subscriber,
    SubscriberStatus,
)
from pipeline.tokens import TokenClaims


def find(session: Session, address: str) -> Subscriber | None:
    """The subscriber stored under this (normalized) address, if any."""
    return session.scalar(select(Subscriber).where(Subscriber.email == address))


def find_many(session: Session, addresses: Iterable[str]) -> dict[str, Subscriber]:
    """The subscribers stored under these addresses, by address."""
    wanted = _present(session, list(addresses))
    if not wanted:
        return {}
    return {
        s.email: s for s in session.scalars(select(Subscriber).where(Subscriber.email.in_(wanted)))
    }


def _present(session: Session, addresses: list[str]) -> list[str]:
    """On SQLite, those of ``addresses`` that are stored; elsewhere all of them.

    An import asks for a thousand addresses a chunk, and usually finds none:
    building the ORM's IN list costs several µs an address, a plain query a fraction.
    """
    connection = session.connection()
    if connection.dialect.name != "sqlite" or not addresses:
        return addresses
    session.flush()  # as the ORM query would (autoflush): see this session's own rows
    found: list[str] = []
    for start in range(0, len(addresses), _IN_CHUNK):
        chunk = addresses[start : start + _IN_CHUNK]
        statement = f"SELECT email FROM subscribers WHERE email IN ({','.join('?' * len(chunk))})"
        found.extend(email for (email,) in connection.exec_driver_sql(statement, tuple(chunk)))
    return found


#: Addresses per IN list: well under SQLite's limit of bound values (32766; 999 before 3.32).
_IN_CHUNK = 500


def page(
    session: Session, *, after_id: int, status: SubscriberStatus | None, limit: int
) -> list[Subscriber]:
    """Up to ``limit`` subscribers (with ``status``, if given) whose id follows ``after_id``."""
    query = select(Subscriber).where(Subscriber.id > after_id)
    if status is not None:
        query = query.where(Subscriber.status == status)
    query = query.order_by(Subscriber.id).limit(limit)
    return list(session.scalars(query))


def add(session: Session, subscriber: Subscriber) -> Subscriber:
    """Store a new subscriber (written at the session's next flush)."""
    session.add(subscriber)
    return subscriber


class NewSubscriber(NamedTuple):
    """The values of one subscriber an import adds that differ from row to row."""

    email: str
    first_name: str | None
    last_name: str | None
    status: SubscriberStatus
    tags: tuple[str, ...]
    fields: Mapping[str, str]


#: What :func:`insert_many` writes, in the order of its statement's placeholders.
_NEW_COLUMNS = (
    "email", "first_name", "last_name", "status", "tags", "fields",
    "source", "created_at", "updated_at", "unsubscribed_at",
)  # fmt: skip
_INSERT = f"INSERT INTO {Subscriber.__tablename__} ({', '.join(_NEW_COLUMNS)}) VALUES "
_VALUES = f"({', '.join('?' * len(_NEW_COLUMNS))})"
#: Rows per INSERT on SQLite: 99 x 10 values stays under its oldest limit (999 bound values).
_ROWS_PER_INSERT = 99


def insert_many(
    session: Session, rows: Sequence[NewSubscriber], *, source: str, now: datetime
) -> None:
    """Insert new subscribers, created at ``now`` (and unsubscribed then, if they arrive left).

    SQLAlchemy's bulk insert converts every value of every row through its
    column type (~30 µs a row: half of a large import). On SQLite each
    *distinct* value is converted once here, with the same column types'
    processors (so what is stored is byte for byte what the ORM stores), and
    the rows go in multi-row ``INSERT ... VALUES (...), (...)`` statements,
    which SQLite runs about twice as fast as ``executemany``'s one row at a
    time. Other databases keep the bulk insert.
    """
    if not rows:
        return
    connection = session.connection()
    dialect = connection.dialect
    table = Subscriber.__table__
    columns = {name: table.c[name] for name in _NEW_COLUMNS}
    as_given = ("email", "first_name", "last_name", "source")
    plain = all(_bind(columns[name], dialect) is _unchanged for name in as_given)
    if dialect.name != "sqlite" or dialect.paramstyle != "qmark" or not plain:
        session.execute(
            insert(Subscriber),
            [
                {
                    **row._asdict(),
                    "tags": list(row.tags),
                    "fields": dict(row.fields),
                    "source": source,
                    "created_at": now,
                    "updated_at": now,
                    "unsubscribed_at": now if row.status in LEFT_STATUSES else None,
                }
                for row in rows
            ],
        )
        return
    tags_value = _bind(columns["tags"], dialect)
    fields_value = _bind(columns["fields"], dialect)
    statuses = {s: _bind(columns["status"], dialect)(s) for s in SubscriberStatus}
    stamp = _bind(columns["created_at"], dialect)(now)
    left = {s: stamp if s in LEFT_STATUSES else None for s in SubscriberStatus}
    no_fields = fields_value({})
    tags_seen: dict[tuple[str, ...], Any] = {}  # an import's rows share few tag sets
    values: list[Any] = []  # row after row, flat
    for row in rows:
        tags = tags_seen.get(row.tags)
        if tags is None:
            tags = tags_seen[row.tags] = tags_value(list(row.tags))
        fields = fields_value(dict(row.fields)) if row.fields else no_fields
        status = row.status
        # fmt: off
        values += (
            row.email, row.first_name, row.last_name, statuses[status], tags, fields,
            source, stamp, stamp, left[status],
        )
        # fmt: on
    step = _ROWS_PER_INSERT * len(_NEW_COLUMNS)
    for start in range(0, len(values), step):
        batch = values[start : start + step]
        statement = _INSERT + ", ".join([_VALUES] * (len(batch) // len(_NEW_COLUMNS)))
        connection.exec_driver_sql(statement, tuple(batch))


def _bind(column: ColumnElement[Any], dialect: Dialect) -> Callable[[Any], Any]:
    """The function the column's type converts a Python value with, for this database."""
    process = column.type.dialect_impl(dialect).bind_processor(dialect)
    return process if process is not None else _unchanged


def _unchanged(value: Any) -> Any:
    return value


def suppress_pending(session: Session, subscriber_ids: list[int]) -> None:
    """Nothing more goes to these subscribers (see :func:`pipeline.store.leavers.suppress_for`)."""
    suppress_for(session, subscriber_ids)


@dataclass(frozen=True)
class TokenHolder:
    """The subscriber a token names, detached from the database."""

    id: int
    email: str
    status: SubscriberStatus


def token_holder(sessions: sessionmaker[Session], claims: TokenClaims) -> TokenHolder | None:
    """Who verified ``claims`` name; None when no such subscriber (or a different address)."""
    with sessions() as session:
        subscriber = session.get(Subscriber, claims.subscriber_id)
        if subscriber is None or not claims.matches(subscriber.email):
            return None
        return TokenHolder(subscriber.id, subscriber.email, SubscriberStatus(subscriber.status))


def stamp_left_by_link(sessions: sessionmaker[Session], subscriber_id: int, when: datetime) -> None:
    """After an unsubscribe link: no older confirm link works, and ``when`` is the leaving time."""
    with sessions.begin() as session:
        subscriber = session.get(Subscriber, subscriber_id)
        if subscriber is not None:
            # A confirmation link still in their mailbox must not bring them back.
            subscriber.confirm_sent_at = None
            # On the app's clock, which confirmation times are measured on too.
            subscriber.unsubscribed_at = when


def count_by_status(sessions: sessionmaker[Session]) -> dict[SubscriberStatus, int]:
    """How many subscribers are in each state (every state listed, zero included)."""
    counts = dict.fromkeys(SubscriberStatus, 0)
    with sessions() as session:
        for status, n in session.execute(
            select(Subscriber.status, func.count()).group_by(Subscriber.status)
        ):
            counts[SubscriberStatus(status)] = int(n)
    return counts
