"""What callers get back: a subscriber detached from the database, and reports.

:class:`SubscriberRecord` is one subscriber as the CLI and tests see it;
:class:`ImportReport` and :class:`ForgetReport` say what an import or an
erasure did; :func:`to_json_dict` is the shape of ``subscribers list --json``.
All are frozen: nothing a caller holds changes behind its back.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from pipeline.errors import Problem
from pipeline.store.models import Subscriber, SubscriberStatus


@dataclass(frozen=True)
class SubscriberRecord:
    """One subscriber as callers see it, detached from the database.

    ``fields`` is a read-only view of a private copy; the record is therefore
    immutable, but (holding a mapping) not hashable.
    """

    email: str
    first_name: str | None
    last_name: str | None
    status: SubscriberStatus
    tags: tuple[str, ...] = ()
    fields: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Copy, so the caller's dict cannot change the record afterwards.
        object.__setattr__(self, "fields", MappingProxyType(dict(self.fields)))


@dataclass(frozen=True)
class ImportReport:
    """What :func:`~pipeline.subscribers.import_csv` did.

    Each address counts once, however many rows of the file name it.
    ``kept_left`` counts addresses that had unsubscribed, bounced or complained:
    their records were left untouched.
    """

    added: int
    updated: int
    unchanged: int
    kept_left: int
    problems: tuple[Problem, ...] = ()

    @property
    def total_rows(self) -> int:
        """Distinct addresses imported or kept, plus rows rejected as problems."""
        return self.added + self.updated + self.unchanged + self.kept_left + len(self.problems)


@dataclass(frozen=True)
class ForgetReport:
    """What :func:`~pipeline.subscribers.forget_subscriber` did.

    ``residue`` is None when nothing of the address is left in the database
    files; otherwise it says why some bytes may remain (running the same
    ``forget`` again later finishes the job).
    """

    was_subscriber: bool
    already_erased: bool
    residue: str | None


def to_json_dict(record: SubscriberRecord) -> dict[str, object]:
    """The shape of ``subscribers list --json``."""
    return {
        "email": record.email,
        "first_name": record.first_name,
        "last_name": record.last_name,
        "status": record.status.value,
        "tags": list(record.tags),
        "fields": dict(record.fields),
    }


def record_of(subscriber: Subscriber) -> SubscriberRecord:
    """The detached record of a loaded subscriber row."""
    return SubscriberRecord(
        email=subscriber.email,
        first_name=subscriber.first_name,
        last_name=subscriber.last_name,
        status=SubscriberStatus(subscriber.status),
        tags=tuple(subscriber.tags or ()),
        fields=dict(subscriber.fields or {}),
    )
