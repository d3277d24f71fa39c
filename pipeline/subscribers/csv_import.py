"""Importing a subscriber CSV: read, check, report ``FILE:LINE`` problems, write in chunks.

The file is streamed row by row and written a chunk of addresses per
transaction, so an import of any size runs in constant memory (apart from the
set of addresses it has seen, which it needs to count duplicates once). A row
that cannot be imported becomes a :class:`~pipeline.errors.Problem` naming its
line, and the rest import; only a file that cannot be read at all (missing,
not UTF-8, no ``email`` column) raises :class:`CsvError` before anything is
written.
"""

from __future__ import annotations

import codecs
import csv
import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from pipeline.errors import InvalidAddressError, Problem
from pipeline.store import subscribers as stored
from pipeline.store.db import GrowingTable, refresh_statistics
from pipeline.store.models import LEFT_STATUSES, SubscriberStatus, utcnow
from pipeline.store.welcome import enrol_addresses
from pipeline.subscribers.addresses import fast_normalize
from pipeline.subscribers.csv_cells import unguard_cell
from pipeline.subscribers.erasure import erased_reason
from pipeline.subscribers.errors import CsvError
from pipeline.subscribers.records import ImportReport
from pipeline.subscribers.rules import (
    MAX_NAME_LENGTH,
    WRITE_ATTEMPTS,
    Outcome,
    Row,
    clean_tags,
    erased,
    merge_into,
    normalize_email,
)

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

    @property
    def columns(self) -> tuple[int, ...]:
        """email, first_name, last_name, tags, status; a missing one reads cell ``width``,
        which :func:`_parse_row` keeps blank."""
        known = (self.email, self.first_name, self.last_name, self.tags, self.status)
        return tuple(self.width if index is None else index for index in known)


def import_csv(
    session_factory: sessionmaker[Session],
    path: Path,
    *,
    source: str = "import",
    chunk_size: int = 1000,
    progress: Callable[[int], None] | None = None,
    secret_key: str | None = None,
    welcome: int | None = None,
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
    under ``secret_key``; see :func:`~pipeline.subscribers.rules.erased` for a
    call without the key). With ``welcome`` (the welcome campaign's id), each
    address added active gets its welcome row in its chunk's transaction.

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
    counts: dict[Outcome, int] = {"added": 0, "updated": 0, "unchanged": 0, "kept_left": 0}
    problems: list[Problem] = []
    seen: set[str] = set()
    pending: dict[str, Row] = {}
    lines: dict[str, list[int]] = {}  # where each pending address appears, for problems
    rows_read = 0
    # Welcome rows grow the ledger as fast as the list.
    grown = ("subscribers", "deliveries") if welcome is not None else ("subscribers",)
    statistics = GrowingTable(session_factory, *grown, first=2 * chunk_size)

    def flush() -> None:
        outcomes = _write_chunk(
            session_factory, list(pending.values()), source, secret_key, welcome
        )
        for email, outcome in outcomes.items():
            if outcome == "erased":
                problems.extend(Problem(path, line, erased_reason()) for line in lines[email])
            elif email not in seen:  # a duplicate from an earlier chunk is not counted again
                seen.add(email)
                counts[outcome] += 1
        pending.clear()
        lines.clear()
        statistics.grew_to(counts["added"])

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
            if not "".join(cells).strip():
                continue  # blank lines, and Excel's rows of bare delimiters
            if header is None:
                header = _parse_header(cells, path, line)
                columns = header.columns
                continue
            rows_read += 1
            parsed = _parse_row(cells, header, columns, delimiter)
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
        refresh_statistics(session_factory, *grown)
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
            try:  # whole blocks: ~10x faster than line by line
                decoder = codecs.getincrementaldecoder("utf-8")()
                while block := raw.read(1 << 20):
                    decoder.decode(block)
                decoder.decode(b"", final=True)
                return
            except UnicodeDecodeError:
                raw.seek(0)  # read again by line, for the line number and the reason
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
        name = unguard_cell(cell.strip())
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


def _parse_row(
    cells: list[str], header: _Header, columns: tuple[int, ...], delimiter: str
) -> Row | str:
    """The row's values, or the reason it is rejected (``columns``: ``header.columns``)."""
    width = header.width
    if len(cells) > width:
        if any(cell.strip() for cell in cells[width:]):
            return (
                f"{len(cells)} values but the header has {width} columns"
                f" (an unquoted {delimiter!r} inside a value?)"
            )
    else:
        # Short rows (trailing cells left out) read as blank, and so does cell
        # ``width``, where the columns the header lacks point (one row: ~1 µs).
        cells = cells + [""] * (width + 1 - len(cells))
    at_email, at_first, at_last, at_tags, at_status = columns
    # unguard_cell: a cell our export guarded against spreadsheets reads as written.
    raw_email = unguard_cell(cells[at_email].strip())
    if not raw_email:
        return "no email address"
    # A plain address (nearly all) needs only the fast path normalize_email tries first.
    email = fast_normalize(raw_email)
    if email is None:
        try:
            email = normalize_email(raw_email)
        except InvalidAddressError as error:
            return str(error)
    first = unguard_cell(cells[at_first].strip()) or None
    last = unguard_cell(cells[at_last].strip()) or None
    if len(first or "") > MAX_NAME_LENGTH or len(last or "") > MAX_NAME_LENGTH:
        return f"name longer than {MAX_NAME_LENGTH} characters"
    status: SubscriberStatus | None = None
    if raw_status := cells[at_status].strip().lower():
        try:
            status = SubscriberStatus(raw_status)
        except ValueError:
            allowed = ", ".join(s.value for s in SubscriberStatus)
            return f"unknown status {raw_status!r} (expected one of: {allowed})"
    fields: dict[str, str] = {}
    if header.custom:  # a comprehension costs ~0.3 µs a row even when there is nothing
        fields = {
            name: unguard_cell(value)
            for index, name in header.custom
            if (value := cells[index].strip())
        }
    # Positional: email, first_name, last_name, tags, fields, status (faster, once a row).
    return Row(email, first, last, _tags(unguard_cell(cells[at_tags].strip())), fields, status)


@functools.lru_cache(maxsize=1024)
def _tags(cell: str) -> tuple[str, ...]:
    """The tags of a ``tags`` cell; cached, since a file's rows repeat a few tag sets."""
    return clean_tags(cell.split(";"))


def _write_chunk(
    session_factory: sessionmaker[Session],
    rows: list[Row],
    source: str,
    secret_key: str | None,
    welcome: int | None = None,
) -> dict[str, Outcome]:
    """Insert or update one chunk in one transaction; the outcome per address."""
    for attempt in range(1, WRITE_ATTEMPTS + 1):
        try:
            with session_factory.begin() as session:
                gone = erased(session, [row.email for row in rows], secret_key)
                kept = [row for row in rows if row.email not in gone]
                outcomes = _apply_chunk(session, kept, source)
                if welcome is not None:
                    # Only rows this chunk added: a re-import welcomes nobody again.
                    added = [email for email, outcome in outcomes.items() if outcome == "added"]
                    enrol_addresses(session, welcome, added)
                return {**outcomes, **dict.fromkeys(gone, "erased")}
        except IntegrityError:
            # A sign-up raced us to one of these addresses; read the chunk again.
            if attempt == WRITE_ATTEMPTS:
                raise
    raise AssertionError("unreachable")


def _apply_chunk(session: Session, rows: list[Row], source: str) -> dict[str, Outcome]:
    existing = stored.find_many(session, [row.email for row in rows])
    outcomes: dict[str, Outcome] = {}
    leaving: list[int] = []
    new_rows: list[stored.NewSubscriber] = []
    now = utcnow()
    for row in rows:
        subscriber = existing.get(row.email)
        if subscriber is None:
            status = row.status or SubscriberStatus.ACTIVE
            new = (row.email, row.first_name, row.last_name, status, row.tags, row.fields)
            new_rows.append(stored.NewSubscriber(*new))
            outcomes[row.email] = "added"
        elif subscriber.status in LEFT_STATUSES:
            outcomes[row.email] = "kept_left"
        else:
            changed = merge_into(subscriber, row)
            if row.status in LEFT_STATUSES:
                # The file says they left (an export from elsewhere): honour it.
                subscriber.status = row.status
                subscriber.unsubscribed_at = now
                leaving.append(subscriber.id)
                changed = True
            outcomes[row.email] = "updated" if changed else "unchanged"
    stored.insert_many(session, new_rows, source=source, now=now)
    stored.suppress_pending(session, leaving)
    return outcomes
