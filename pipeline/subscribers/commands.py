"""One subscriber at a time: add, remove (unsubscribe) and forget (erase).

These are ``subscribers add``, ``remove`` and ``forget``; the web's
one-click unsubscribe uses :func:`remove_subscriber` too. Adding never brings
back an address that left or was erased: only the person can, by subscribing
again through the web form and its confirmation email.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from pipeline.errors import InvalidAddressError, NotFoundError
from pipeline.store import subscribers as stored
from pipeline.store.erasure import erase_rows, remember_erased, scrub_sqlite, secure_delete
from pipeline.store.models import LEFT_STATUSES, Subscriber, SubscriberStatus, utcnow
from pipeline.store.welcome import enrol_ids
from pipeline.subscribers.erasure import erased_reason, erasure_digest
from pipeline.subscribers.errors import SubscriberErasedError, SubscriberError, SubscriberLeftError
from pipeline.subscribers.records import ForgetReport, SubscriberRecord, record_of
from pipeline.subscribers.rules import (
    MAX_NAME_LENGTH,
    WRITE_ATTEMPTS,
    Row,
    clean_tags,
    erased,
    merge_into,
    normalize_email,
)


def add_subscriber(
    session_factory: sessionmaker[Session],
    email: str,
    *,
    first_name: str | None = None,
    last_name: str | None = None,
    tags: Iterable[str] = (),
    source: str = "cli",
    secret_key: str | None = None,
    welcome: int | None = None,
) -> SubscriberRecord:
    """Add an active subscriber, or update the names and tags of a current one.

    ``welcome`` (the welcome campaign's id, see :mod:`pipeline.sending.welcome`):
    a newly added subscriber gets its welcome row in the same transaction.

    A pending subscriber stays pending (they have not confirmed yet). An address
    that left raises :class:`SubscriberLeftError`: adding it back would mail
    someone who asked not to be mailed. An erased address (its digest under
    ``secret_key``) raises :class:`SubscriberErasedError`; without the key,
    any erased address at all raises :class:`SubscriberError` (see
    :func:`~pipeline.subscribers.rules.erased`).
    """
    address = normalize_email(email)
    first, last = _clean_name(first_name), _clean_name(last_name)
    for name in (first, last):
        if name is not None and len(name) > MAX_NAME_LENGTH:
            raise SubscriberError(f"name longer than {MAX_NAME_LENGTH} characters: {name[:40]!r}…")
    wanted_tags = clean_tags(tags)
    for attempt in range(1, WRITE_ATTEMPTS + 1):
        try:
            with session_factory.begin() as session:
                if erased(session, [address], secret_key):
                    raise SubscriberErasedError(f"{address}: {erased_reason()}")
                subscriber = stored.find(session, address)
                created = subscriber is None
                if subscriber is None:
                    subscriber = stored.add(
                        session,
                        Subscriber(
                            email=address,
                            first_name=first,
                            last_name=last,
                            status=SubscriberStatus.ACTIVE,
                            tags=list(wanted_tags),
                            fields={},
                            source=source,
                        ),
                    )
                elif subscriber.status in LEFT_STATUSES:
                    raise SubscriberLeftError(_left_message(address, subscriber.status))
                else:
                    merge_into(subscriber, Row(address, first, last, wanted_tags))
                session.flush()
                if created and welcome is not None:
                    enrol_ids(session, welcome, [subscriber.id])
                return record_of(subscriber)
        except IntegrityError:
            # Someone else inserted the address between our read and write.
            if attempt == WRITE_ATTEMPTS:
                raise
    raise AssertionError("unreachable")


def remove_subscriber(session_factory: sessionmaker[Session], email: str) -> None:
    """Unsubscribe an address; the record stays so that no import can revive it.

    Pending ledger rows of running campaigns become ``suppressed`` so senders
    skip them. A bounced or complained address keeps that (more telling)
    status, and an earlier ``unsubscribed_at`` is kept. Raises
    :class:`NotFoundError` for an unknown address.
    """
    address = _lookup_key(email)
    with session_factory.begin() as session:
        subscriber = stored.find(session, address)
        if subscriber is None:
            raise NotFoundError(f"no subscriber with address {address}")
        if subscriber.status not in LEFT_STATUSES:
            subscriber.status = SubscriberStatus.UNSUBSCRIBED
            subscriber.unsubscribed_at = utcnow()
        stored.suppress_pending(session, [subscriber.id])


def forget_subscriber(
    session_factory: sessionmaker[Session],
    email: str,
    *,
    secret_key: str,
    now: datetime | None = None,
) -> ForgetReport:
    """Erase a person entirely (a privacy request), keeping only a keyed digest.

    Every row naming the address goes or is anonymised (see
    :func:`pipeline.store.erasure.erase_rows`): the subscriber row with its
    consent record, webhook events with or without a subscriber id, and the
    address inside other rows' error texts. Ledger rows stay, pointing at no
    one, so campaign counts still add up to planned. What is kept is
    HMAC-SHA256 of the address under ``secret_key`` (``erased_addresses``),
    which imports, ``subscribers add`` and the webhook refuse.

    On SQLite the deleting transaction overwrites freed bytes, then the file is
    rebuilt and its WAL emptied (:func:`~pipeline.store.erasure.scrub_sqlite`).
    Running it again for an erased address is harmless (it scrubs again).
    Raises :class:`NotFoundError` when nothing in the database names the
    address and it was never erased.
    """
    address = _lookup_key(email)
    forms = {address, email.strip().lower()}
    digest = erasure_digest(secret_key, address)
    with session_factory.begin() as session, secure_delete(session):
        subscriber = stored.find(session, address)
        subscriber_id = subscriber.id if subscriber is not None else None
        session.expunge_all()  # rows are deleted by statement below, not by the ORM
        touched = erase_rows(session, subscriber_id, forms)
        first_time = remember_erased(session, digest, now or utcnow())
        if touched == 0 and first_time:
            # Rolls back: an address nobody knows is not recorded either.
            raise NotFoundError(f"no subscriber with address {address}")
    return ForgetReport(
        was_subscriber=subscriber_id is not None,
        already_erased=not first_time,
        residue=scrub_sqlite(session_factory),
    )


def _lookup_key(raw: str) -> str:
    """The stored form of an address to look up.

    An address stored under older validation rules must stay removable and
    forgettable even if today's validator rejects it.
    """
    try:
        return normalize_email(raw)
    except InvalidAddressError:
        return raw.strip().lower()


def _clean_name(name: str | None) -> str | None:
    return (name or "").strip() or None


def _left_message(address: str, status: SubscriberStatus) -> str:
    reason = {
        SubscriberStatus.UNSUBSCRIBED: "unsubscribed",
        SubscriberStatus.BOUNCED: "bounced (the mailbox does not accept mail)",
        SubscriberStatus.COMPLAINED: "marked the newsletter as spam",
    }.get(status, status.value)
    return (
        f"{address} {reason}; they are not added back without their consent: "
        "they can subscribe again themselves through the subscribe form"
    )
