"""Front matter fields: the YAML keys of an article file, checked one by one.

:class:`FrontMatter` validates the data of the ``---`` block (already parsed from
YAML) and turns each failure into a writer-facing message; :func:`_validation_problems`
pins each message to the line of its key as ``path:line: message``. Reading the
file and the YAML lives in :mod:`pipeline.content.article_text`; the Article record
and loading a folder in :mod:`pipeline.content.articles`.
"""

from __future__ import annotations

import difflib
import re
import reprlib
import unicodedata
from datetime import UTC, date, datetime, time, tzinfo
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from pipeline.errors import Problem

ArticleStatus = Literal["queued", "draft"]

SLUG_PATTERN = re.compile(r"[a-z0-9][a-z0-9-]*")
_SLUG_HINT = "lowercase letters, digits and hyphens, like hip-pain"

# Values are echoed in messages; a bounded repr keeps a pasted essay (or a YAML
# alias bomb) from turning one problem line into megabytes.
_repr = reprlib.Repr()
_repr.maxstring = 60
_repr.maxother = 60
_repr.maxlevel = 2


def _shown(value: object) -> str:
    return _repr.repr(value)


def _fail(message: str, **context: str) -> PydanticCustomError:
    # The message goes in as context, never as the template, so braces a writer
    # typed are not mistaken for placeholders.
    return PydanticCustomError("front_matter", "{message}", {"message": message, **context})


def _one_line(text: str) -> str:
    """Collapse every run of whitespace and control characters into one space.

    Titles, subjects and summaries end up in email headers, where a CR or LF
    would start a new header; they are flattened here, not rejected.
    """
    cleaned = "".join(" " if unicodedata.category(ch) in {"Cc", "Zl", "Zp"} else ch for ch in text)
    return " ".join(cleaned.split())


def _optional_text(field: str, value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise _fail(f"{field} must be text, not {_shown(value)} (put it in quotes)")
    try:
        # a YAML escape such as "\ud800" yields a lone surrogate, which no email can carry
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise _fail(f"{field} contains an escape that is not a real character") from None
    return _one_line(value) or None


def _optional_slug(field: str, value: object) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not SLUG_PATTERN.fullmatch(value):
        raise _fail(f"{field} must be {_SLUG_HINT}, not {_shown(value)}")
    return value


def _optional_url(field: str, value: object) -> str | None:
    if value is None or value == "":
        return None
    problem = _fail(f"{field} must be an http:// or https:// address, not {_shown(value)}")
    if not isinstance(value, str):
        raise problem
    url = value.strip()
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unclosed IPv6 bracket
        raise problem from None
    # whitespace or control characters in a URL would break the HTML and headers
    unsafe = any(ch.isspace() or unicodedata.category(ch) in {"Cc", "Cs"} for ch in url)
    if parts.scheme not in {"http", "https"} or not parts.netloc or unsafe:
        raise problem
    return url


def _series_part_issues(series: object, part: object) -> list[tuple[str, str]]:
    """(key, message) for a series without a part or a part without a series."""
    has_series = series is not None and series != ""
    if part is not None and not has_series:
        return [("part", "part needs a series: add `series: SLUG` or remove `part`")]
    if has_series and part is None:
        return [("series", f"series {_shown(series)} needs a part: add `part: 1` (2, 3, ...)")]
    return []


class FrontMatter(BaseModel):
    """The YAML block at the top of an article file, validated.

    Validate with ``FrontMatter.model_validate(data, context={"tz": zone})``: the
    clinic's zone gives a date or a naive time in ``send_after`` its meaning (UTC
    when no zone is passed). Every error carries a complete, writer-facing
    message; a whole-model error names the key to point at in ``ctx["field"]``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    title: str
    series: str | None = None
    part: int | None = None
    slug: str | None = None
    summary: str | None = None
    author: str | None = None
    canonical_url: str | None = None
    image: str | None = None
    send_after: datetime | None = None
    status: ArticleStatus = "queued"
    subject: str | None = None
    feed_key: str | None = None
    feed_hash: str | None = None

    @field_validator("title", mode="before")
    @classmethod
    def _title(cls, value: Any) -> str:
        title = _optional_text("title", value)
        if title is None:
            raise _fail("title must not be empty")
        return title

    @field_validator("summary", "author", "subject", "feed_key", "feed_hash", mode="before")
    @classmethod
    def _text(cls, value: Any, info: ValidationInfo) -> str | None:
        return _optional_text(info.field_name or "value", value)

    @field_validator("series", "slug", mode="before")
    @classmethod
    def _slug(cls, value: Any, info: ValidationInfo) -> str | None:
        return _optional_slug(info.field_name or "value", value)

    @field_validator("canonical_url", "image", mode="before")
    @classmethod
    def _url(cls, value: Any, info: ValidationInfo) -> str | None:
        return _optional_url(info.field_name or "value", value)

    @field_validator("part", mode="before")
    @classmethod
    def _part(cls, value: Any) -> int | None:
        if value is None:
            return None
        # YAML reads `yes` as True, and bool is an int subclass in Python
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise _fail(f"part must be a whole number from 1 up, not {_shown(value)}")
        return value

    @field_validator("status", mode="before")
    @classmethod
    def _status(cls, value: Any) -> str:
        if value is None:
            return "queued"
        if not isinstance(value, str) or value not in ("queued", "draft"):
            raise _fail(f"status must be queued or draft, not {_shown(value)}")
        return value

    @field_validator("send_after", mode="before")
    @classmethod
    def _send_after(cls, value: Any, info: ValidationInfo) -> datetime | None:
        if value is None:
            return None
        context = info.context if isinstance(info.context, dict) else {}
        zone = context.get("tz")
        if not isinstance(zone, tzinfo):
            zone = UTC
        problem = _fail(
            "send_after must be a date (2026-12-01) or a date and time"
            f" (2026-12-01 09:00), not {_shown(value)}"
        )
        moment: datetime
        if isinstance(value, datetime):
            moment = value
        elif isinstance(value, date):
            moment = datetime.combine(value, time(0))  # a date means the start of that day
        elif isinstance(value, str):
            try:
                moment = datetime.fromisoformat(value.strip())
            except ValueError:
                raise problem from None
        else:
            raise problem
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=zone)
        try:
            # a time at the very edge of the calendar would overflow in every
            # later comparison or conversion; refuse it here, with a line number
            moment.astimezone(UTC)
            return moment.astimezone(zone)
        except (OverflowError, ValueError):
            raise _fail(f"send_after {_shown(value)} is out of range") from None

    @model_validator(mode="after")
    def _series_and_part(self) -> FrontMatter:
        for field, message in _series_part_issues(self.series, self.part):
            raise _fail(message, field=field)
        return self


# The keys a writer types; import-feed's own bookkeeping (feed_*) is valid but not suggested.
_KNOWN_KEYS = tuple(key for key in FrontMatter.model_fields if not key.startswith("feed_"))


def _unknown_key(key: str) -> str:
    guess = difflib.get_close_matches(key, _KNOWN_KEYS, n=1)
    hint = f"did you mean {guess[0]!r}?" if guess else "known keys: " + ", ".join(_KNOWN_KEYS)
    return f"unknown key {_shown(key)} ({hint})"


def _validation_problems(path: Path, exc: ValidationError, lines: dict[str, int]) -> list[Problem]:
    problems = []
    for error in exc.errors(include_url=False):
        loc = error["loc"]
        key = str(loc[0]) if loc else str((error.get("ctx") or {}).get("field", ""))
        line = lines.get(key, 1)
        if error["type"] == "missing":
            message = f"missing {key}: add `{key}: ...` to the front matter"
        elif error["type"] == "extra_forbidden":
            message = _unknown_key(key)
        elif error["type"] == "front_matter":
            message = error["msg"]
        else:  # not expected: every field check raises front_matter errors
            message = f"{key}: {error['msg']}"
        problems.append(Problem(path, line, message))
    return problems
