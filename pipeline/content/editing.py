"""Editing an article file from a form, as a person would with a text editor.

The files stay the source of truth (and git-friendly), so a save changes only
what the form changed: a front matter line whose value is the same is kept
byte for byte (its quotes, comments and keys the form does not show too), a
changed one is rewritten as ``key: value``, a new one is put in the usual order
(:data:`FIELD_ORDER`), an emptied one is removed. An untouched file re-saved is
not written at all. New files are written whole, in that order.

Two people editing one article: the form carries the file's *version* (a hash
of its bytes, :func:`version_of`); :func:`save_article` refuses a save whose
version is no longer the file's (:class:`StaleVersion`), and a new article whose
file appeared meanwhile (:class:`ArticleExists`). Writes go through a hidden
temporary file and ``os.replace`` (``os.link`` for new files, which never
replaces), so a reader never sees half a file and ``load_articles`` skips the
temporary one.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import yaml
from pydantic import ValidationError

from pipeline.content.article_text import _decode, _parse_yaml, _split
from pipeline.content.front_matter import FrontMatter, _one_line
from pipeline.errors import PipelineError, Problem

#: Front matter keys in the order a new file lists them (the README's order).
FIELD_ORDER = (
    "title",
    "series",
    "part",
    "slug",
    "summary",
    "author",
    "canonical_url",
    "image",
    "send_after",
    "status",
    "subject",
)
#: The keys the form edits; any other key in a file is kept as it is.
EDITED = ("title", "series", "part", "summary", "author", "image", "send_after", "status")
#: Values written in double quotes always, as the sample articles do (free text).
_QUOTED = frozenset({"title", "summary", "subject"})
_KEY_LINE = re.compile(r"^[\"']?([A-Za-z_][A-Za-z0-9_-]*)[\"']?[ \t]*:(?:[ \t]|$)")
_PLAIN_DATE = re.compile(r"\d{4}-\d{2}-\d{2}( \d{2}:\d{2})?")

# One process writes through the dashboard (``newsletter serve``); the lock makes its
# compare-then-replace one step for concurrent requests.
_write_lock = threading.Lock()


class StaleVersion(PipelineError):
    """The file changed (or went) since the form was opened: the save is refused."""


class ArticleExists(PipelineError):
    """A new article's file name is taken."""


def version_of(raw: bytes) -> str:
    """The version a form carries: a hash of the file's bytes."""
    return hashlib.sha256(raw).hexdigest()


@dataclass(frozen=True)
class ArticleForm:
    """The dashboard's article form: every value as text, as typed."""

    title: str = ""
    series: str = ""
    part: str = ""
    summary: str = ""
    author: str = ""
    image: str = ""
    send_date: str = ""  # YYYY-MM-DD (a date input)
    send_time: str = ""  # HH:MM, optional (a time input)
    status: str = "queued"
    body: str = ""

    def values(self) -> dict[str, object]:
        """The front matter this form means; an empty field is left out."""
        part = self.part.strip()
        date_part, time_part = self.send_date.strip(), self.send_time.strip()
        send_after = f"{date_part} {time_part}".strip() if date_part else time_part
        values: dict[str, object] = {
            "title": self.title.strip(),
            "series": self.series.strip(),
            "part": int(part) if part.isdigit() else part,
            "summary": self.summary.strip(),
            "author": self.author.strip(),
            "image": self.image.strip(),
            "send_after": send_after,
            "status": self.status.strip() or "queued",
        }
        return {key: value for key, value in values.items() if value != ""}

    @property
    def text_body(self) -> str:
        """The body as the file holds it: browsers send a textarea's lines with CRLF."""
        return self.body.replace("\r\n", "\n").replace("\r", "\n")


@dataclass(frozen=True)
class ArticleFile:
    """An article file as read for editing: its bytes, text and front matter."""

    path: Path
    raw: bytes
    text: str  # newlines as \n
    yaml_offset: int
    yaml_text: str
    body: str
    data: dict[str, object]

    @property
    def version(self) -> str:
        """See :func:`version_of`."""
        return version_of(self.raw)

    def form(self, tz: ZoneInfo) -> ArticleForm:
        """The form showing this file (``tz``: the clinic's, for ``send_after``)."""

        def text(key: str) -> str:
            value = self.data.get(key)
            return "" if value is None else str(value)

        send_date, send_time = _split_send_after(self.data.get("send_after"), tz)
        return ArticleForm(
            title=text("title"),
            series=text("series"),
            part=text("part"),
            summary=text("summary"),
            author=text("author"),
            image=text("image"),
            send_date=send_date,
            send_time=send_time,
            status=text("status") or "queued",
            body=self.body,
        )


def read_for_editing(path: Path) -> ArticleFile | list[Problem]:
    """The file, or the problems that keep it from being edited in a form."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        return [Problem(path, 1, f"cannot read the file: {exc.strerror or exc}")]
    text, unreadable = _decode(path)
    if text is None:
        return [unreadable or Problem(path, 1, "cannot read the file")]
    source = _split(text)
    if isinstance(source, str):
        return [Problem(path, 1, source)]
    data, _lines, problems = _parse_yaml(path, source)
    if problems or not isinstance(data, dict):
        return problems or [Problem(path, 1, "front matter must be `key: value` lines")]
    fields = {key if isinstance(key, str) else str(key): value for key, value in data.items()}
    return ArticleFile(path, raw, text, source.yaml_offset, source.yaml_text, source.body, fields)


def _split_send_after(value: object, tz: ZoneInfo) -> tuple[str, str]:
    """A ``send_after`` value as the form's date and time fields (clinic time)."""
    if value is None or value == "":
        return "", ""
    if not isinstance(value, datetime) and hasattr(value, "isoformat"):
        return str(value.isoformat()), ""  # a date
    moment = send_after_moment(value, tz)
    if moment is None:
        return str(value), ""  # not a date check accepts: shown as typed, for fixing
    local = moment.astimezone(tz)
    return local.date().isoformat(), local.strftime("%H:%M")


def send_after_moment(value: object, tz: ZoneInfo) -> datetime | None:
    """``send_after`` read exactly as ``check`` reads it, or None when it is not valid."""
    try:
        front = FrontMatter.model_validate({"title": "x", "send_after": value}, context={"tz": tz})
    except ValidationError:
        return None
    return front.send_after


def _same(key: str, old: object, new: object, tz: ZoneInfo) -> bool:
    """Whether a file's value and the form's mean the same (then the line is kept)."""
    if key == "status":
        return (old or "queued") == (new or "queued")
    if key == "send_after" and old is not None and new is not None:
        before, after = send_after_moment(old, tz), send_after_moment(new, tz)
        return before is not None and before == after
    if isinstance(old, str) and isinstance(new, str):
        return _one_line(old) == new if key in _QUOTED else old.strip() == new
    if old == "":
        old = None
    return old == new


def _plain_ok(value: str) -> bool:
    """Whether YAML reads ``key: value`` back as exactly this text."""
    if not value or value != value.strip() or "\n" in value:
        return False
    try:
        return bool(yaml.safe_load(f"k: {value}") == {"k": value})
    except yaml.YAMLError:
        return False


def yaml_line(key: str, value: object) -> str:
    """One ``key: value`` line, quoted only where YAML needs it (free text always)."""
    if isinstance(value, int):
        return f"{key}: {value}"
    text = str(value)
    if key == "send_after" and _PLAIN_DATE.fullmatch(text):
        return f"{key}: {text}"
    if key not in _QUOTED and _plain_ok(text):
        return f"{key}: {text}"
    # JSON's string syntax is YAML's double-quoted style (escapes included).
    return f"{key}: {json.dumps(text, ensure_ascii=False)}"


def new_article_text(form: ArticleForm) -> str:
    """A new article file: the form's front matter in the usual order, then the body."""
    values = form.values()
    lines = [yaml_line(key, values[key]) for key in FIELD_ORDER if key in values]
    return "---\n" + "".join(f"{line}\n" for line in lines) + "---\n" + form.text_body


def _segments(yaml_text: str) -> list[tuple[str | None, list[str]]]:
    """The front matter's lines, grouped: each top-level key with its continuation lines."""
    lines = yaml_text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    segments: list[tuple[str | None, list[str]]] = []
    for index, line in enumerate(lines):
        key = _KEY_LINE.match(line)
        continues = line[:1] in (" ", "\t", "-") or (
            line.strip() == ""
            and any(later[:1] in (" ", "\t") for later in _until_next_key(lines, index))
        )
        if key is not None:
            segments.append((key.group(1), [line]))
        elif continues and segments and segments[-1][0] is not None:
            segments[-1][1].append(line)
        else:
            segments.append((None, [line]))
    return segments


def _until_next_key(lines: list[str], index: int) -> list[str]:
    """The non-blank lines after ``index`` up to the next top-level key line."""
    following = []
    for later in lines[index + 1 :]:
        if _KEY_LINE.match(later):
            break
        if later.strip():
            following.append(later)
    return following[:1]


def edited_text(original: ArticleFile, form: ArticleForm, tz: ZoneInfo) -> str:
    """The file with the form's changes: unchanged lines kept as they are."""
    values = form.values()
    segments = _segments(original.yaml_text)
    for key in EDITED:
        new = values.get(key)
        at = next((i for i, (name, _lines) in enumerate(segments) if name == key), None)
        if _same(key, original.data.get(key), new, tz):
            continue
        if at is not None:
            if new is None:
                del segments[at]
            else:
                segments[at] = (key, [yaml_line(key, new)])
            continue
        if new is None:
            continue
        segments.insert(_insert_at(segments, key), (key, [yaml_line(key, new)]))
    yaml_text = "".join(f"{line}\n" for _key, lines in segments for line in lines)
    text = original.text
    end = original.yaml_offset + len(original.yaml_text)
    closing = text[end : len(text) - len(original.body)]
    body = form.text_body
    if body and not closing.endswith("\n"):
        closing += "\n"
    return text[: original.yaml_offset] + yaml_text + closing + body


def _insert_at(segments: list[tuple[str | None, list[str]]], key: str) -> int:
    """Where a new key goes: after the nearest key before it in FIELD_ORDER."""
    rank = FIELD_ORDER.index(key)
    before = set(FIELD_ORDER[:rank])
    after = set(FIELD_ORDER[rank + 1 :])
    last_before = max((i for i, (name, _l) in enumerate(segments) if name in before), default=None)
    if last_before is not None:
        return last_before + 1
    first_after = min((i for i, (name, _l) in enumerate(segments) if name in after), default=None)
    return first_after if first_after is not None else len(segments)


def _encoded(text: str, like: bytes | None) -> bytes:
    """UTF-8, with CRLF line ends where the file had them (a Windows editor's file)."""
    if like is not None and b"\r\n" in like:
        text = text.replace("\n", "\r\n")
    return text.encode("utf-8")


def save_article(path: Path, text: str, version: str | None) -> bool:
    """Write ``text`` to ``path`` if the file is still at ``version`` (None: a new file).

    Returns False when the file already holds exactly this text (nothing written,
    so an untouched file keeps its bytes and its modification time).
    """
    with _write_lock:
        if version is None:
            temp = _temp_file(path.parent, _encoded(text, None))
            try:
                os.link(temp, path)  # fails if the name exists, whoever just made it
            except FileExistsError:
                raise ArticleExists(f"{path.name} already exists") from None
            finally:
                temp.unlink(missing_ok=True)
            return True
        try:
            current = path.read_bytes()
        except FileNotFoundError:
            raise StaleVersion(f"{path.name} was deleted after you opened it") from None
        if version_of(current) != version:
            raise StaleVersion(f"{path.name} was changed after you opened it")
        data = _encoded(text, current)
        normalized = current.decode("utf-8", "replace").removeprefix("\ufeff")
        if data == current or normalized.replace("\r\n", "\n") == text:
            return False
        os.replace(_temp_file(path.parent, data), path)
        return True


def _temp_file(directory: Path, data: bytes) -> Path:
    # A hidden name: load_articles skips it, should we be interrupted mid-write.
    handle, name = tempfile.mkstemp(dir=directory, prefix=".edit-", suffix=".tmp")
    with os.fdopen(handle, "wb") as stream:
        stream.write(data)
        stream.flush()
        os.fsync(stream.fileno())
    os.chmod(name, 0o644)  # mkstemp's 0600 would hide the article from other readers
    return Path(name)
