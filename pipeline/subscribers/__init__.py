"""The subscriber list: import, add, remove, forget, list and export.

Addresses are stored normalized by :func:`normalize_email`, so every lookup
here normalizes first. Consent is one-way: nothing in this package ever turns
an address that unsubscribed, bounced or complained back into ``active``; only
the person can, by subscribing again through the web form.

Everything streams: imports read the CSV row by row and write in chunks, and
listing or exporting pages through the table by id, so a list of any size runs
in constant memory (apart from the set of addresses an import has seen, which
it needs to count duplicates once).

Where things are: :mod:`.csv_import` (reading the CSV, ``FILE:LINE``
problems), :mod:`.commands` (add, remove, forget), :mod:`.listing` (list and
export), :mod:`.records` (what callers get back), :mod:`.rules` (the stored
address, merging, erased people), :mod:`.errors`, :mod:`.addresses` (the one
address check), :mod:`.erasure` (the keyed digest of an erased address),
:mod:`.signup` (the sign-up form's name rule). The SQL is in
:mod:`pipeline.store.subscribers` and :mod:`pipeline.store.signups`.
"""

from __future__ import annotations

from pipeline.subscribers.commands import add_subscriber, forget_subscriber, remove_subscriber
from pipeline.subscribers.csv_import import import_csv
from pipeline.subscribers.errors import (
    CsvError,
    SubscriberErasedError,
    SubscriberError,
    SubscriberLeftError,
)
from pipeline.subscribers.listing import EXPORT_COLUMNS, export_csv, iter_subscribers
from pipeline.subscribers.records import (
    ForgetReport,
    ImportReport,
    SubscriberRecord,
    to_json_dict,
)
from pipeline.subscribers.rules import MAX_NAME_LENGTH, normalize_email

__all__ = [
    "EXPORT_COLUMNS",
    "MAX_NAME_LENGTH",
    "CsvError",
    "ForgetReport",
    "ImportReport",
    "SubscriberErasedError",
    "SubscriberError",
    "SubscriberLeftError",
    "SubscriberRecord",
    "add_subscriber",
    "export_csv",
    "forget_subscriber",
    "import_csv",
    "iter_subscribers",
    "normalize_email",
    "remove_subscriber",
    "to_json_dict",
]
