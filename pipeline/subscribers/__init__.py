"""The subscriber list: import, add, remove, forget, list and export.

Addresses are stored normalized by :func:`normalize_email`, so every lookup
here normalizes first. Consent is one-way: nothing in this module ever turns
an address that unsubscribed, bounced or complained back into ``active``; only
the person can, by subscribing again through the web form.

Everything streams: imports read the CSV row by row and write in chunks, and
listing or exporting pages through the table by id, so a list of any size runs
in constant memory (apart from the set of addresses an import has seen, which
it needs to count duplicates once).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import MappingProxyType
from typing import Literal, TextIO

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from pipeline.errors import InvalidAddressError, NotFoundError, PipelineError, Problem
from pipeline.store.db import refresh_statistics
from pipeline.store.erasure import (
    any_erased,
    erase_rows,
    erased_among,
    remember_erased,
    scrub_sqlite,
    secure_delete,
)
from pipeline.store.models import (
    LEFT_STATUSES,
    Delivery,
    DeliveryStatus,
    Subscriber,
    SubscriberStatus,
    utcnow,
)
from pipeline.subscribers.addresses import normalize_address
from pipeline.subscribers.erasure import erased_reason, erasure_digest

#: Longest first or last name the database holds (``String(200)`` in the models).
MAX_NAME_LENGTH = 200

#: Columns of ``export_csv`` before the custom fields, in this order.
EXPORT_COLUMNS = ("email", "first_name", "last_name", "status", "tags")

# A concurrent sign-up of the same address can win the race for the unique
# email; the chunk is then simply read and written again.
_WRITE_ATTEMPTS = 3

# Header spellings that common exports use (Mailchimp, Excel, hand-made) for the
# columns we understand, after lower-casing and turning spaces/hyphens into "_".
_KNOWN_COLUMNS = {
    "email": "email",
    "email_address": "email",
    "e_mail": "email",
    "e_mail_address": "email",
    "first_name": "first_name",
    "firstname": "first_name",
    "last_name": "last_name",
    "lastname": "last_name",
    "tags": "tags",
    "status": "status",
}

_Outcome = Literal["added", "updated", "unchanged", "kept_left", "erased"]


class CsvError(PipelineError, ValueError):
    """A subscriber CSV cannot be imported at all (missing, unreadable, no ``email`` column)."""


class SubscriberError(PipelineError, ValueError):
    """A request about one subscriber cannot be carried out."""


class SubscriberLeftError(SubscriberError):
    """The address left the list; only the person can subscribe it again (consent)."""


class SubscriberErasedError(SubscriberError):
    """The address was erased at the person's request; only the person can bring it back."""


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
    """What :func:`import_csv` did.

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


# -- single subscribers ---------------------------------------------------------


def add_subscriber(
    session_factory: sessionmaker[Session],
    email: str,
    *,
    first_name: str | None = None,
    last_name: str | None = None,
    tags: Iterable[str] = (),
    source: str = "cli",
    secret_key: str | None = None,
) -> SubscriberRecord:
    """Add an active subscriber, or update the names and tags of a current one.

    A pending subscriber stays pending (they have not confirmed yet). An address
    that left raises :class:`SubscriberLeftError`: adding it back would mail
    someone who asked not to be mailed. An erased address (its digest under
    ``secret_key``) raises :class:`SubscriberErasedError`; without the key,
    any erased address at all raises :class:`SubscriberError` (see
    :func:`_erased`).
    """
    address = normalize_email(email)
    first, last = _clean_name(first_name), _clean_name(last_name)
    for name in (first, last):
        if name is not None and len(name) > MAX_NAME_LENGTH:
            raise SubscriberError(f"name longer than {MAX_NAME_LENGTH} characters: {name[:40]!r}…")
    wanted_tags = _clean_tags(tags)
    for attempt in range(1, _WRITE_ATTEMPTS + 1):
        try:
            with session_factory.begin() as session:
                if _erased(session, [address], secret_key):
                    raise SubscriberErasedError(f"{address}: {erased_reason()}")
                subscriber = _find(session, address)
                if subscriber is None:
                    subscriber = Subscriber(
                        email=address,
                        first_name=first,
                        last_name=last,
                        status=SubscriberStatus.ACTIVE,
                        tags=list(wanted_tags),
                        fields={},
                        source=source,
                    )
                    session.add(subscriber)
                elif subscriber.status in LEFT_STATUSES:
                    raise SubscriberLeftError(_left_message(address, subscriber.status))
                else:
                    _merge_into(subscriber, _Row(address, first, last, wanted_tags))
                session.flush()
                return _record(subscriber)
        except IntegrityError:
            # Someone else inserted the address between our read and write.
            if attempt == _WRITE_ATTEMPTS:
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
        subscriber = _find(session, address)
        if subscriber is None:
            raise NotFoundError(f"no subscriber with address {address}")
        if subscriber.status not in LEFT_STATUSES:
            subscriber.status = SubscriberStatus.UNSUBSCRIBED
            subscriber.unsubscribed_at = utcnow()
        _suppress_pending(session, [subscriber.id])


@dataclass(frozen=True)
class ForgetReport:
    """What :func:`forget_subscriber` did.

    ``residue`` is None when nothing of the address is left in the database
    files; otherwise it says why some bytes may remain (running the same
    ``forget`` again later finishes the job).
    """

    was_subscriber: bool
    already_erased: bool
    residue: str | None


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
        subscriber = _find(session, address)
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


# -- listing and export -----------------------------------------------------------


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
        query = select(Subscriber).where(Subscriber.id > last_id)
        if status is not None:
            query = query.where(Subscriber.status == status)
        query = query.order_by(Subscriber.id).limit(chunk_size)
        with session_factory() as session:
            page = [(s.id, _record(s)) for s in session.scalars(query)]
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
    """
    field_names: dict[str, None] = {}  # an ordered set
    for record in iter_subscribers(session_factory):
        field_names.update(dict.fromkeys(record.fields))
    writer = csv.writer(out)
    writer.writerow([*EXPORT_COLUMNS, *field_names])
    written = 0
    for record in iter_subscribers(session_factory):
        writer.writerow(
            [
                record.email,
                record.first_name or "",
                record.last_name or "",
                record.status.value,
                ";".join(record.tags),
                *(record.fields.get(name, "") for name in field_names),
            ]
        )
        written += 1
    return written


# -- CSV import --------------------------------------------------------------------


@dataclass(frozen=True)
class _Row:
    """One address's values from the file (several rows of it already merged)."""

    email: str
    first_name: str | None = None
    last_name: str | None = None
    tags: tuple[str, ...] = ()
    fields: Mapping[str, str] = field(default_factory=dict)
    status: SubscriberStatus | None = None

    def merged_with(self, later: _Row) -> _Row:
        """This row updated by a later one: its non-empty values win, tags add up."""
        status = later.status or self.status
        if self.status in LEFT_STATUSES:
            # Leaving is sticky within a file, as it is across imports.
            status = self.status
        return _Row(
            email=self.email,
            first_name=later.first_name or self.first_name,
            last_name=later.last_name or self.last_name,
            tags=_clean_tags((*self.tags, *later.tags)),
            fields={**self.fields, **later.fields},
            status=status,
        )


@dataclass(frozen=True)
class _Header:
    """Where each understood column sits in a row."""

    email: int
    first_name: int | None
    last_name: int | None
    tags: int | None
    status: int | None
    custom: tuple[tuple[int, str], ...]
    width: int


def import_csv(
    session_factory: sessionmaker[Session],
    path: Path,
    *,
    source: str = "import",
    chunk_size: int = 1000,
    progress: Callable[[int], None] | None = None,
    secret_key: str | None = None,
) -> ImportReport:
    """Import a subscriber CSV (see DESIGN.md, "Subscribers CSV").

    The file must be UTF-8 (a BOM is fine) with a header row naming an
    ``email`` column; ``first_name``, ``last_name``, ``tags`` (``;``-separated)
    and ``status`` are understood, header case and spacing do not matter, and
    every other non-empty column is kept as a custom field. Comma or semicolon
    delimiters are detected from the header line.

    New addresses become ``active`` (or the row's ``status``) with ``source``.
    Existing current subscribers get non-empty names, merged tags and merged
    fields; a row with a leaving status (e.g. from an export) unsubscribes them.
    Addresses that left are never touched. Invalid rows become
    :class:`Problem` entries (``path:line: reason``) and the rest import; so
    does every row of an address erased at the person's request (its digest
    under ``secret_key``; see :func:`_erased` for a call without the key).

    The file is streamed and written ``chunk_size`` addresses per transaction,
    so an import stopped half-way keeps the chunks already written; running it
    again is harmless. ``progress`` is called after each chunk with the number
    of data rows read so far. Raises :class:`CsvError` when the file cannot be
    imported at all; nothing is written then.
    """
    if chunk_size < 1:
        raise ValueError("chunk_size must be at least 1")
    # Checked before anything is written: a wrongly encoded file would
    # otherwise fail half-way with garbled names already stored.
    _check_utf8(path)
    delimiter = _detect_delimiter(path)
    counts: dict[_Outcome, int] = {"added": 0, "updated": 0, "unchanged": 0, "kept_left": 0}
    problems: list[Problem] = []
    seen: set[str] = set()
    pending: dict[str, _Row] = {}
    lines: dict[str, list[int]] = {}  # where each pending address appears, for problems
    rows_read = 0

    def flush() -> None:
        outcomes = _write_chunk(session_factory, list(pending.values()), source, secret_key)
        for email, outcome in outcomes.items():
            if outcome == "erased":
                problems.extend(Problem(path, line, erased_reason()) for line in lines[email])
            elif email not in seen:  # a duplicate from an earlier chunk is not counted again
                seen.add(email)
                counts[outcome] += 1
        pending.clear()
        lines.clear()

    with _open_text(path) as stream:
        # strict: a stray or unclosed quote is reported instead of silently
        # swallowing the rows after it into one value.
        reader = csv.reader(stream, delimiter=delimiter, strict=True)
        header: _Header | None = None
        line_before = 0
        while True:
            # A quoted value may span lines: report the line the row starts on.
            line = line_before + 1
            try:
                cells = next(reader)
            except StopIteration:
                break
            except csv.Error as error:
                problem = Problem(path, line, _malformed(error, line, reader.line_num))
                if header is None:
                    raise CsvError(str(problem)) from error
                # The reader starts afresh on the next physical line.
                problems.append(problem)
                line_before = reader.line_num
                continue
            line_before = reader.line_num
            if not any(cell.strip() for cell in cells):
                continue  # blank lines, and Excel's rows of bare delimiters
            if header is None:
                header = _parse_header(cells, path, line)
                continue
            rows_read += 1
            parsed = _parse_row(cells, header, delimiter)
            if isinstance(parsed, str):
                problems.append(Problem(path, line, parsed))
                continue
            earlier = pending.get(parsed.email)
            pending[parsed.email] = earlier.merged_with(parsed) if earlier else parsed
            lines.setdefault(parsed.email, []).append(line)
            if len(pending) >= chunk_size:
                flush()
                if progress is not None:
                    progress(rows_read)
        if header is None:
            raise CsvError(f"{path}: empty file; expected a header row with an 'email' column")
    if pending:
        flush()
    if counts["added"] or counts["updated"]:
        refresh_statistics(session_factory, "subscribers")
    if progress is not None:
        progress(rows_read)
    return ImportReport(
        added=counts["added"],
        updated=counts["updated"],
        unchanged=counts["unchanged"],
        kept_left=counts["kept_left"],
        # Erased rows are found chunk by chunk, after the rows around them.
        problems=tuple(sorted(problems, key=lambda problem: problem.line)),
    )


def _malformed(error: csv.Error, first: int, last: int) -> str:
    message = f"malformed CSV: {error}"
    if last > first:
        message += f" (an unclosed quote?); lines {first} to {last} were skipped"
    return message


def _open_text(path: Path) -> TextIO:
    try:
        # utf-8-sig drops the BOM Excel writes; newline="" is what csv expects.
        return path.open(encoding="utf-8-sig", newline="")
    except OSError as error:
        raise CsvError(f"{path}: cannot read the file: {error.strerror or error}") from error


def _check_utf8(path: Path) -> None:
    """Raise :class:`CsvError` naming the first line that is not UTF-8."""
    try:
        with path.open("rb") as raw:
            # Splitting bytes on b"\n" is safe: UTF-8 never uses 0x0A inside a character.
            for number, line in enumerate(raw, start=1):
                try:
                    line.decode("utf-8")
                except UnicodeDecodeError as error:
                    raise CsvError(
                        f"{path}:{number}: the file is not UTF-8 ({error.reason}); "
                        "save it as 'CSV UTF-8' and import again"
                    ) from error
    except OSError as error:
        raise CsvError(f"{path}: cannot read the file: {error.strerror or error}") from error


def _detect_delimiter(path: Path) -> str:
    """Comma or semicolon (European Excel), whichever the header line uses more."""
    with _open_text(path) as stream:
        for line in stream:
            if line.strip():
                # Delimiters inside quoted header names do not count.
                unquoted = re.sub(r'"[^"]*"', "", line)
                return ";" if unquoted.count(";") > unquoted.count(",") else ","
    return ","


def _canonical(name: str) -> str:
    return re.sub(r"[\s\-]+", "_", name.strip().lower())


def _parse_header(cells: list[str], path: Path, line: int) -> _Header:
    known: dict[str, int] = {}
    custom: list[tuple[int, str]] = []
    seen: set[str] = set()
    for index, cell in enumerate(cells):
        name = cell.strip()
        if not name:
            continue  # trailing delimiters leave unnamed, empty columns
        key = _KNOWN_COLUMNS.get(_canonical(name))
        identity = key or name.casefold()
        if identity in seen:
            raise CsvError(f"{path}:{line}: the column {name!r} appears twice in the header")
        seen.add(identity)
        if key:
            known[key] = index
        else:
            custom.append((index, name))
    if "email" not in known:
        found = ", ".join(cell.strip() for cell in cells if cell.strip())
        raise CsvError(f"{path}:{line}: no 'email' column in the header (found: {found})")
    return _Header(
        email=known["email"],
        first_name=known.get("first_name"),
        last_name=known.get("last_name"),
        tags=known.get("tags"),
        status=known.get("status"),
        custom=tuple(custom),
        width=len(cells),
    )


def _parse_row(cells: list[str], header: _Header, delimiter: str) -> _Row | str:
    """The row's values, or the reason it is rejected."""
    if any(cell.strip() for cell in cells[header.width :]):
        return (
            f"{len(cells)} values but the header has {header.width} columns"
            f" (an unquoted {delimiter!r} inside a value?)"
        )

    def cell(index: int | None) -> str:
        return cells[index].strip() if index is not None and index < len(cells) else ""

    raw_email = cell(header.email)
    if not raw_email:
        return "no email address"
    try:
        email = normalize_email(raw_email)
    except InvalidAddressError as error:
        return str(error)
    first, last = cell(header.first_name) or None, cell(header.last_name) or None
    for name in (first, last):
        if name is not None and len(name) > MAX_NAME_LENGTH:
            return f"name longer than {MAX_NAME_LENGTH} characters"
    status: SubscriberStatus | None = None
    if raw_status := cell(header.status).lower():
        try:
            status = SubscriberStatus(raw_status)
        except ValueError:
            allowed = ", ".join(s.value for s in SubscriberStatus)
            return f"unknown status {raw_status!r} (expected one of: {allowed})"
    return _Row(
        email=email,
        first_name=first,
        last_name=last,
        tags=_clean_tags(cell(header.tags).split(";")),
        fields={name: value for index, name in header.custom if (value := cell(index))},
        status=status,
    )


def _write_chunk(
    session_factory: sessionmaker[Session], rows: list[_Row], source: str, secret_key: str | None
) -> dict[str, _Outcome]:
    """Insert or update one chunk in one transaction; the outcome per address."""
    for attempt in range(1, _WRITE_ATTEMPTS + 1):
        try:
            with session_factory.begin() as session:
                erased = _erased(session, [row.email for row in rows], secret_key)
                kept = [row for row in rows if row.email not in erased]
                outcomes = _apply_chunk(session, kept, source)
                return {**outcomes, **dict.fromkeys(erased, "erased")}
        except IntegrityError:
            # A sign-up raced us to one of these addresses; read the chunk again.
            if attempt == _WRITE_ATTEMPTS:
                raise
    raise AssertionError("unreachable")


def _apply_chunk(session: Session, rows: list[_Row], source: str) -> dict[str, _Outcome]:
    wanted = [row.email for row in rows]
    existing = {
        s.email: s for s in session.scalars(select(Subscriber).where(Subscriber.email.in_(wanted)))
    }
    outcomes: dict[str, _Outcome] = {}
    leaving: list[int] = []
    new_rows: list[dict[str, object]] = []
    now = utcnow()
    for row in rows:
        subscriber = existing.get(row.email)
        if subscriber is None:
            status = row.status or SubscriberStatus.ACTIVE
            new_rows.append(
                {
                    "email": row.email,
                    "first_name": row.first_name,
                    "last_name": row.last_name,
                    "status": status,
                    "tags": list(row.tags),
                    "fields": dict(row.fields),
                    "source": source,
                    "created_at": now,
                    "updated_at": now,
                    "unsubscribed_at": now if status in LEFT_STATUSES else None,
                }
            )
            outcomes[row.email] = "added"
        elif subscriber.status in LEFT_STATUSES:
            outcomes[row.email] = "kept_left"
        else:
            changed = _merge_into(subscriber, row)
            if row.status in LEFT_STATUSES:
                # The file says they left (an export from elsewhere): honour it.
                subscriber.status = row.status
                subscriber.unsubscribed_at = now
                leaving.append(subscriber.id)
                changed = True
            outcomes[row.email] = "updated" if changed else "unchanged"
    if new_rows:
        # One bulk INSERT per chunk: several times faster than ORM objects.
        session.execute(insert(Subscriber), new_rows)
    _suppress_pending(session, leaving)
    return outcomes


# -- helpers -------------------------------------------------------------------------


def _merge_into(subscriber: Subscriber, row: _Row) -> bool:
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
    tags = list(_clean_tags((*(subscriber.tags or []), *row.tags)))
    if tags != (subscriber.tags or []):
        subscriber.tags = tags
        changed = True
    fields = {**(subscriber.fields or {}), **row.fields}
    if fields != (subscriber.fields or {}):
        subscriber.fields = fields
        changed = True
    return changed


def _suppress_pending(session: Session, subscriber_ids: list[int]) -> None:
    """Pending ledger rows of these subscribers will not be sent."""
    if not subscriber_ids:
        return
    session.execute(
        update(Delivery)
        .where(
            Delivery.subscriber_id.in_(subscriber_ids),
            Delivery.status == DeliveryStatus.PENDING,
        )
        .values(status=DeliveryStatus.SUPPRESSED),
        execution_options={"synchronize_session": False},
    )


def _erased(session: Session, addresses: list[str], secret_key: str | None) -> set[str]:
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
    digests = {erasure_digest(secret_key, address): address for address in addresses}
    return {digests[digest] for digest in erased_among(session, digests)}


def _find(session: Session, address: str) -> Subscriber | None:
    return session.scalar(select(Subscriber).where(Subscriber.email == address))


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


def _clean_tags(tags: Iterable[str]) -> tuple[str, ...]:
    """Trimmed, non-empty, first occurrence kept, order kept."""
    return tuple(dict.fromkeys(t.strip() for t in tags if t.strip()))


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


def _record(subscriber: Subscriber) -> SubscriberRecord:
    return SubscriberRecord(
        email=subscriber.email,
        first_name=subscriber.first_name,
        last_name=subscriber.last_name,
        status=SubscriberStatus(subscriber.status),
        tags=tuple(subscriber.tags or ()),
        fields=dict(subscriber.fields or {}),
    )
