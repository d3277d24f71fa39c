"""Erasing a person (``subscribers forget``) and the keyed digests kept afterwards.

Deleting rows is not enough on SQLite: a deleted or updated row's bytes stay
in free space inside pages (unless the library was built with
``SECURE_DELETE``, as Debian's is but many others are not), and every page
ever written sits in the ``-wal`` file until a checkpoint overwrites it.
:func:`scrub_sqlite` therefore rebuilds the file (``VACUUM``) and empties the
WAL (``wal_checkpoint(TRUNCATE)``); ``tests/subscribers/test_erasure.py`` scans the bytes.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from contextlib import contextmanager
from datetime import datetime

from sqlalchemy import (
    ColumnElement,
    Delete,
    Engine,
    Text,
    Update,
    cast,
    delete,
    exists,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from pipeline.store.db import rowcount
from pipeline.store.leavers import forget_exclusions_of, suppress_unreached
from pipeline.store.ledger_links import lock_for_erasure
from pipeline.store.models import (
    ConfirmationOutbox,
    Delivery,
    DeliveryStatus,
    ErasedAddress,
    Subscriber,
    WebhookEvent,
)

#: What replaces an erased address inside an error text another row keeps.
ERASED_MARK = "(erased address)"
#: What an erased person's own ledger rows keep as their error text.
ERASED_ERROR = "(erased with the subscriber's data)"

# Bounded IN lists (SQLite's and drivers' limits).
_CHUNK = 500


def erased_among(session: Session, digests: Collection[str]) -> set[str]:
    """Which of these digests belong to erased addresses."""
    wanted = list(digests)
    found: set[str] = set()
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start : start + _CHUNK]
        found.update(
            session.scalars(select(ErasedAddress.digest).where(ErasedAddress.digest.in_(chunk)))
        )
    return found


def any_erased(session: Session) -> bool:
    """Whether any address was ever erased (and not brought back by its owner)."""
    return bool(session.scalar(select(exists().select_from(ErasedAddress))))


def remember_erased(session: Session, digest: str, now: datetime) -> bool:
    """Keep the digest of an erased address; False if it was kept already."""
    if session.get(ErasedAddress, digest) is not None:
        return False
    session.add(ErasedAddress(digest=digest, erased_at=now))
    session.flush()
    return True


def unerase(session: Session, digest: str) -> None:
    """The person subscribed again themselves (double opt-in): forget the digest."""
    session.execute(delete(ErasedAddress).where(ErasedAddress.digest == digest))


def erase_rows(session: Session, subscriber_id: int | None, forms: Collection[str]) -> int:
    """Delete or anonymise every row naming the person; the number of rows that did.

    ``forms`` are the address as stored (normalized) and as typed (lower-cased).
    The person's ledger rows stay, so every campaign's counts still add up to
    planned, but point at no one: pending ones become ``suppressed`` (never to
    be sent; a campaign whose claims have not reached them yet gets such a row
    too), their error texts (which can quote the address) are blanked and
    ``subscriber_id`` becomes NULL. Error texts of other rows (a refused batch
    can name one address for the whole batch) lose the address. Webhook events
    go whole, linked or not: matched by subscriber id, by address, or by the
    address anywhere in the event's JSON. So do queued sign-ups (the
    confirmation outbox), by address or subscriber. Last, the subscriber row,
    with its names, fields and consent record (IP address, pending confirmation).
    """
    touched = 0
    if subscriber_id is not None:
        lock_for_erasure(session, subscriber_id)  # first: see pipeline.store.ledger_links
        # Campaigns whose claims have not reached them yet count them too (a
        # suppressed row); their own pending rows are suppressed below.
        suppress_unreached(session, [subscriber_id])
        forget_exclusions_of(session, subscriber_id)
        mine = Delivery.subscriber_id == subscriber_id
        touched += _changed(
            session,
            update(Delivery)
            .where(mine, Delivery.status == DeliveryStatus.PENDING)
            .values(status=DeliveryStatus.SUPPRESSED),
        )
        session.execute(
            update(Delivery).where(mine, Delivery.error.is_not(None)).values(error=ERASED_ERROR),
            execution_options={"synchronize_session": False},
        )
        touched += _changed(session, update(Delivery).where(mine).values(subscriber_id=None))
    for form in forms:
        # Exact-case mentions lose just the address; any other spelling loses the text.
        session.execute(
            update(Delivery)
            .where(Delivery.error.contains(form, autoescape=True))
            .values(error=func.replace(Delivery.error, form, ERASED_MARK)),
            execution_options={"synchronize_session": False},
        )
        touched += _changed(
            session,
            update(Delivery)
            .where(func.lower(Delivery.error).contains(form, autoescape=True))
            .values(error=ERASED_ERROR),
        )
    matches = [
        WebhookEvent.email.in_(list(forms)),
        *(func.lower(cast(WebhookEvent.raw, Text)).contains(f, autoescape=True) for f in forms),
    ]
    if subscriber_id is not None:
        matches.append(WebhookEvent.subscriber_id == subscriber_id)
    touched += _changed(session, delete(WebhookEvent).where(or_(*matches)))
    queued: list[ColumnElement[bool]] = [func.lower(ConfirmationOutbox.email).in_(list(forms))]
    if subscriber_id is not None:
        queued.append(ConfirmationOutbox.subscriber_id == subscriber_id)
    touched += _changed(session, delete(ConfirmationOutbox).where(or_(*queued)))
    if subscriber_id is not None:
        touched += _changed(session, delete(Subscriber).where(Subscriber.id == subscriber_id))
    return touched


def _changed(session: Session, statement: Update | Delete) -> int:
    """Run one UPDATE or DELETE; how many rows it changed."""
    return rowcount(session.execute(statement, execution_options={"synchronize_session": False}))


@contextmanager
def secure_delete(session: Session) -> Iterator[None]:
    """On SQLite, deleted bytes are overwritten with zeros within this block.

    A per-connection setting: the previous value is restored before the
    connection goes back to the pool. Write through ``session.execute`` (not a
    later flush) inside the block. On PostgreSQL it does nothing.
    """
    connection = session.connection()
    if connection.dialect.name != "sqlite":
        yield
        return
    previous = int(connection.exec_driver_sql("PRAGMA secure_delete").scalar() or 0)
    connection.exec_driver_sql("PRAGMA secure_delete=ON")
    try:
        yield
    finally:
        connection.exec_driver_sql(f"PRAGMA secure_delete={previous}")


def scrub_sqlite(sessions: sessionmaker[Session]) -> str | None:
    """Leave no deleted bytes in a SQLite file or its WAL; None, or why it could not.

    ``VACUUM`` rewrites the file from live rows only (older, freed copies of a
    row left by updates are gone too); ``wal_checkpoint(TRUNCATE)`` then copies
    the result into the file and cuts the WAL to zero bytes. The checkpoint
    waits (busy timeout) for readers of older snapshots; if one still holds on,
    old frames stay in the WAL and the reason is returned. PostgreSQL: None
    (its dead row versions go at the next autovacuum; see the README).
    """
    with sessions() as session:
        bind = session.get_bind()
    engine = bind if isinstance(bind, Engine) else bind.engine
    if engine.dialect.name != "sqlite":
        return None
    try:
        with engine.connect() as connection:
            # VACUUM cannot run inside a transaction.
            autocommit = connection.execution_options(isolation_level="AUTOCOMMIT")
            autocommit.exec_driver_sql("VACUUM")
            busy = autocommit.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").one()[0]
    except OperationalError as error:
        return f"the database file could not be rewritten ({error.orig})"
    if busy:
        return "another process was reading the database, so its WAL file could not be emptied"
    return None
