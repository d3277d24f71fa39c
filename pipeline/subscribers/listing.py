"""Reading the list out: ``subscribers list`` and ``subscribers export``.

Both page through the table by id (keyset pagination), so a list of any size
is read in constant memory and no transaction stays open while the caller
works on the records.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from typing import TextIO

from sqlalchemy.orm import Session, sessionmaker

from pipeline.store import subscribers as stored
from pipeline.store.models import SubscriberStatus
from pipeline.subscribers.csv_cells import guard_cell
from pipeline.subscribers.records import SubscriberRecord, record_of

#: Columns of ``export_csv`` before the custom fields, in this order.
EXPORT_COLUMNS = ("email", "first_name", "last_name", "status", "tags")


def iter_subscribers(
    session_factory: sessionmaker[Session],
    *,
    status: SubscriberStatus | None = None,
    chunk_size: int = 1000,
) -> Iterator[SubscriberRecord]:
    """Every subscriber (or those with ``status``) in id order, a page at a time.

    Keyset pagination on id: each page is one short query in its own session,
    and no transaction stays open while the caller works on the records.
    """
    if chunk_size < 1:
        raise ValueError("chunk_size must be at least 1")
    last_id = 0
    while True:
        with session_factory() as session:
            rows = stored.page(session, after_id=last_id, status=status, limit=chunk_size)
            page = [(s.id, record_of(s)) for s in rows]
        for _id, record in page:
            yield record
        if len(page) < chunk_size:
            return
        last_id = page[-1][0]


def export_csv(session_factory: sessionmaker[Session], out: TextIO) -> int:
    """Write every subscriber as CSV (the format :func:`import_csv` reads back).

    Columns: ``email,first_name,last_name,status,tags`` then one per custom
    field, in the order fields first appear. Two streaming passes: the first
    finds the field names, the second writes rows. A field first used by a
    record changed between the passes is not exported. Returns rows written.
    A cell that a spreadsheet would run as a formula is written guarded
    (:mod:`pipeline.subscribers.csv_cells`); the import reads it back as it was.
    """
    field_names: dict[str, None] = {}  # an ordered set
    for record in iter_subscribers(session_factory):
        field_names.update(dict.fromkeys(record.fields))
    writer = csv.writer(out)
    writer.writerow([guard_cell(name) for name in (*EXPORT_COLUMNS, *field_names)])
    written = 0
    for record in iter_subscribers(session_factory):
        cells = (
            record.email,
            record.first_name or "",
            record.last_name or "",
            record.status.value,
            ";".join(record.tags),
            *(record.fields.get(name, "") for name in field_names),
        )
        writer.writerow([guard_cell(cell) for cell in cells])
        written += 1
    return written
