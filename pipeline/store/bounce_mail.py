"""The SQL the bounce-mail reader needs: who a bounced address belongs to."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy.orm import Session, sessionmaker

from pipeline.store.subscribers import find_many


def subscribers_by_address(
    sessions: sessionmaker[Session], addresses: Collection[str]
) -> dict[str, tuple[int, str]]:
    """Stored subscribers among ``addresses``: address -> (id, status)."""
    listed = sorted(set(addresses))
    found: dict[str, tuple[int, str]] = {}
    with sessions() as session:
        for start in range(0, len(listed), 500):
            chunk = listed[start : start + 500]
            for address, row in find_many(session, chunk).items():
                found[address] = (row.id, str(row.status))
    return found
