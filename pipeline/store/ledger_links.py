"""How ledger rows stay linked to their subscriber without a foreign key.

``deliveries`` has no FOREIGN KEY constraints (migration 0016): PostgreSQL
checks one with a query per inserted row, and those checks were 60% of the
time it took to plan a campaign. What the constraint guaranteed is kept by
two locks, taken by every writer that could break a link:

- a statement that adds ledger rows reads its audience ``FOR KEY SHARE OF
  subscribers`` (:func:`locking_audience`), so nobody can delete one of those
  subscribers until the rows are committed. Leaving, tagging or editing a
  subscriber takes a weaker lock and is not held up;
- erasure, the only code that deletes a subscriber, first locks that row
  ``FOR UPDATE`` (:func:`lock_for_erasure`). It waits for any such statement
  to commit, and its own statements then see the rows it added, and unlink
  them. A statement that starts after the lock waits for the erasure and
  skips the deleted subscriber.

Campaigns are never deleted, and rows are only added to a campaign that
exists, so ``campaign_id`` needs no lock. SQLite runs one writer at a time,
which orders all of this by itself; there the locks render as nothing.
"""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from pipeline.store.models import Subscriber

_Audience = TypeVar("_Audience", bound=Select[*tuple[Any, ...]])


def locking_audience(audience: _Audience) -> _Audience:
    """The SELECT of an ``INSERT INTO deliveries ... SELECT``, keeping its subscribers."""
    return audience.with_for_update(read=True, key_share=True, of=Subscriber)


def lock_for_erasure(session: Session, subscriber_id: int) -> None:
    """Before erasing a subscriber: wait out every statement adding rows for them."""
    session.execute(select(Subscriber.id).where(Subscriber.id == subscriber_id).with_for_update())
