"""Dashboard accounts: the ``users`` table and the first-run setup links already used.

Only hashes are stored (see :mod:`pipeline.accounts`); addresses are stored
lower-cased, so ``Ann@x`` and ``ann@x`` are one account.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from pipeline.errors import PipelineError
from pipeline.store.db import rowcount
from pipeline.store.models import UsedSetupLink, User


class DuplicateUserError(PipelineError, ValueError):
    """An account with this address exists already."""


@dataclass(frozen=True)
class UserRecord:
    """One dashboard account."""

    id: int
    email: str
    role: str
    password_hash: str
    session_version: int
    created_at: datetime


def _record(row: User) -> UserRecord:
    return UserRecord(
        id=row.id,
        email=row.email,
        role=row.role,
        password_hash=row.password_hash,
        session_version=row.session_version,
        created_at=row.created_at,
    )


def _insert(session: Session, email: str, role: str, password_hash: str, now: datetime) -> User:
    row = User(email=email.lower(), role=role, password_hash=password_hash, created_at=now)
    row.session_version = 0
    session.add(row)
    session.flush()
    return row


def add_user(
    sessions: sessionmaker[Session], email: str, role: str, password_hash: str, now: datetime
) -> UserRecord:
    """Create an account; :class:`DuplicateUserError` when the address has one."""
    try:
        with sessions.begin() as session:
            return _record(_insert(session, email, role, password_hash, now))
    except IntegrityError:
        raise DuplicateUserError(f"{email}: an account with this address exists already") from None


def create_first_owner(
    sessions: sessionmaker[Session],
    nonce: str,
    email: str,
    password_hash: str,
    now: datetime,
) -> UserRecord | None:
    """The first owner, from the setup link ``nonce``; None when the link was used or
    an account exists already (nothing is written then).

    One transaction, serialized against every other setup: two posts of one link
    (a double click, or two tabs) and two different links at once must make one
    owner between them. The nonce's primary key alone covers the first case only:
    under PostgreSQL's read committed, two *different* links would both count no
    account and both insert one. So the count runs under a lock every setup takes
    first (an advisory lock on PostgreSQL; SQLite's single writer, claimed by the
    nonce's insert before the count reads), and sees whatever the winner committed.
    """
    try:
        with sessions.begin() as session:
            _lock_setup(session)
            session.add(UsedSetupLink(nonce=nonce, used_at=now))
            session.flush()
            if session.scalar(select(func.count()).select_from(User)):
                raise _AlreadySetUp  # rolls the link's row back: it stays unused
            return _record(_insert(session, email, "owner", password_hash, now))
    except (IntegrityError, _AlreadySetUp):
        return None


#: Any constant: the PostgreSQL advisory lock that lets one first-run setup run at a time.
_PG_SETUP_LOCK = 7_414_015


def _lock_setup(session: Session) -> None:
    """Wait for any other setup in flight, until this transaction ends (PostgreSQL).

    SQLite needs nothing more: the nonce's insert, the transaction's first
    statement, takes the database's one write lock (waiting out another setup
    within the busy timeout) before the count reads.
    """
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_SETUP_LOCK})")


class _AlreadySetUp(Exception):
    """An account exists: the setup link must not add another owner."""


def setup_link_used(sessions: sessionmaker[Session], nonce: str) -> bool:
    """Whether a setup link already created an account."""
    with sessions() as session:
        return session.get(UsedSetupLink, nonce) is not None


def count_users(sessions: sessionmaker[Session]) -> int:
    """How many accounts exist."""
    with sessions() as session:
        return int(session.scalar(select(func.count()).select_from(User)) or 0)


def list_users(sessions: sessionmaker[Session]) -> list[UserRecord]:
    """Every account, by address."""
    with sessions() as session:
        return [_record(r) for r in session.scalars(select(User).order_by(User.email))]


def find_user(sessions: sessionmaker[Session], email: str) -> UserRecord | None:
    """The account with this address (any case), or None."""
    with sessions() as session:
        row = session.scalar(select(User).where(User.email == email.lower()))
        return _record(row) if row is not None else None


def get_user(sessions: sessionmaker[Session], user_id: int) -> UserRecord | None:
    """The account with this id, or None."""
    with sessions() as session:
        row = session.get(User, user_id)
        return _record(row) if row is not None else None


def remove_user(sessions: sessionmaker[Session], email: str) -> bool:
    """Delete an account; whether one was there."""
    with sessions.begin() as session:
        return rowcount(session.execute(delete(User).where(User.email == email.lower()))) > 0


def set_password_hash(sessions: sessionmaker[Session], user_id: int, password_hash: str) -> None:
    """Store a new hash (argon2 parameters grew) without ending any session."""
    with sessions.begin() as session:
        session.execute(update(User).where(User.id == user_id).values(password_hash=password_hash))


def end_sessions(sessions: sessionmaker[Session], user_id: int) -> None:
    """Make every session cookie issued to this account invalid (logout)."""
    with sessions.begin() as session:
        session.execute(
            update(User).where(User.id == user_id).values(session_version=User.session_version + 1)
        )
