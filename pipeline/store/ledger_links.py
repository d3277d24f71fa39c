"""How ledger rows stay linked to their subscriber without a foreign key.

``deliveries`` has no FOREIGN KEY constraints (migration 0016): PostgreSQL
checks one with a query per inserted row, and those checks were 60% of the
time it took to plan a campaign. What the constraint guaranteed is kept by
locks, taken by every writer that could break a link:

- a statement that adds ledger rows reads its audience ``FOR KEY SHARE OF
  subscribers`` (:func:`locking_audience`), so nobody can delete one of those
  subscribers until the rows are committed. Leaving, tagging or editing a
  subscriber takes a weaker lock and is not held up;
- except a claim, which writes the rows of the next people of a campaign's
  audience (:func:`pipeline.store.snapshot.claim_people`): a lock per person
  read cost a tenth of the claim. It takes one lock instead, the ledger's
  claim lock, shared (:func:`hold_out_erasure`): claims do not wait for each
  other there;
- erasure, the only code that deletes a subscriber, first takes the claim
  lock alone, then the subscriber's row ``FOR UPDATE``
  (:func:`lock_for_erasure`). It waits for any such statement to commit,
  and its own statements then see the rows it added, and unlink them. A
  statement that starts after the locks waits for the erasure and skips the
  deleted subscriber.

Campaigns are never deleted, and rows are only added to a campaign that
exists, so ``campaign_id`` needs no lock. SQLite runs one writer at a time,
which orders all of this by itself; there the locks render as nothing (the
claim lock is a PostgreSQL advisory lock, held to the end of the transaction).
"""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import Connection, Select, func, select
from sqlalchemy.orm import Session

from pipeline.store.models import Subscriber

_Audience = TypeVar("_Audience", bound=Select[*tuple[Any, ...]])


def locking_audience(audience: _Audience) -> _Audience:
    """The SELECT of an ``INSERT INTO deliveries ... SELECT``, keeping its subscribers."""
    return audience.with_for_update(read=True, key_share=True, of=Subscriber)


#: The ledger's claim lock: a PostgreSQL advisory lock key, held shared by each
#: claim writing rows and alone by each erasure (any number, unique to this use).
CLAIM_LOCK = 0x6E6C_6C69_6E6B  # "nllink"


def hold_out_erasure(connection: Connection) -> None:
    """In a claim's transaction, before it writes rows: no erasure runs until it commits."""
    if connection.dialect.name == "postgresql":
        connection.execute(select(func.pg_advisory_xact_lock_shared(CLAIM_LOCK)))


def lock_for_erasure(session: Session, subscriber_id: int) -> None:
    """Before erasing a subscriber: wait out every statement adding rows for them."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(CLAIM_LOCK)))
    session.execute(select(Subscriber.id).where(Subscriber.id == subscriber_id).with_for_update())
