"""The rules every way onto the list shares: the stored address, merging, erased people.

``subscribers add`` (:mod:`.commands`) and the CSV import (:mod:`.csv_import`)
both store addresses in the form :func:`normalize_email` gives, merge new
values into a current subscriber by :func:`merge_into` (never touching the
status: consent is one-way), and refuse an address erased at the person's
request (:func:`erased`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from sqlalchemy.orm import Session

from pipeline.store.erasure import any_erased, erased_among
from pipeline.store.models import LEFT_STATUSES, Subscriber, SubscriberStatus
from pipeline.subscribers.addresses import normalize_address
from pipeline.subscribers.erasure import erasure_digest
from pipeline.subscribers.errors import SubscriberError

#: Longest first or last name the database holds (``String(200)`` in the models).
MAX_NAME_LENGTH = 200

# A concurrent sign-up of the same address can win the race for the unique
# email; the chunk is then simply read and written again.
WRITE_ATTEMPTS = 3

Outcome = Literal["added", "updated", "unchanged", "kept_left", "erased"]


def normalize_email(raw: str) -> str:
    """The stored form of an address: validated in form (no DNS) and lower-cased whole.

    The domain is case-insensitive by standard; the local part technically is
    not, but no real mailbox distinguishes ``Ann@`` from ``ann@``, and
    lower-casing it is what keeps one person from being two subscribers.
    Surrounding whitespace is ignored. An internationalized domain is stored in
    its ASCII (punycode) form, which every mail system accepts; only a
    non-ASCII local part stays Unicode (it needs SMTPUTF8). An RFC 2047
    encoded-word (``=?``) or a control character is refused. Raises
    :class:`InvalidAddressError` with the reason; the one check is
    :func:`pipeline.subscribers.addresses.normalize_address`.
    """
    return normalize_address(raw)


@dataclass(frozen=True, slots=True)  # slots: made once per CSV row, ~40% faster to build
class Row:
    """One address's values from the file (several rows of it already merged)."""

    email: str
    first_name: str | None = None
    last_name: str | None = None
    tags: tuple[str, ...] = ()
    fields: Mapping[str, str] = field(default_factory=dict)
    status: SubscriberStatus | None = None

    def merged_with(self, later: Row) -> Row:
        """This row updated by a later one: its non-empty values win, tags add up."""
        status = later.status or self.status
        if self.status in LEFT_STATUSES:
            # Leaving is sticky within a file, as it is across imports.
            status = self.status
        return Row(
            email=self.email,
            first_name=later.first_name or self.first_name,
            last_name=later.last_name or self.last_name,
            tags=clean_tags((*self.tags, *later.tags)),
            fields={**self.fields, **later.fields},
            status=status,
        )


def merge_into(subscriber: Subscriber, row: Row) -> bool:
    """Apply non-empty names, new tags and fields to a current subscriber; True if changed.

    Status is never touched here: a pending subscriber stays pending until they
    confirm, and only explicit leaving changes an active one.
    """
    changed = False
    if row.first_name and row.first_name != subscriber.first_name:
        subscriber.first_name = row.first_name
        changed = True
    if row.last_name and row.last_name != subscriber.last_name:
        subscriber.last_name = row.last_name
        changed = True
    # JSON columns do not track in-place changes: assign new objects.
    tags = list(clean_tags((*(subscriber.tags or []), *row.tags)))
    if tags != (subscriber.tags or []):
        subscriber.tags = tags
        changed = True
    fields = {**(subscriber.fields or {}), **row.fields}
    if fields != (subscriber.fields or {}):
        subscriber.fields = fields
        changed = True
    return changed


def erased(session: Session, addresses: list[str], secret_key: str | None) -> set[str]:
    """Which of these normalized addresses were erased at the person's request.

    Without the secret key no digest can be compared, so this refuses to
    answer (:class:`SubscriberError`) once any address has been erased: a
    caller that forgot the key must not quietly bring an erased person back.
    """
    if secret_key is None:
        if any_erased(session):
            raise SubscriberError(
                "addresses were erased at people's request; recognising them needs the secret key"
            )
        return set()
    if not any_erased(session):
        return set()  # the usual case: no digest to compute (an import asks per chunk)
    digests = {erasure_digest(secret_key, address): address for address in addresses}
    return {digests[digest] for digest in erased_among(session, digests)}


def clean_tags(tags: Iterable[str]) -> tuple[str, ...]:
    """Trimmed, non-empty, first occurrence kept, order kept."""
    return tuple(dict.fromkeys(t.strip() for t in tags if t.strip()))
