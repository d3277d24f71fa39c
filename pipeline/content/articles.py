"""Read and validate article files (Markdown + YAML front matter) into records.

An article file starts with a ``---`` block of YAML front matter and goes on with
the Markdown body. Every problem is reported as ``path:line: message`` with the
line of the key at fault, so a writer can jump straight to it; nothing a writer
can put in a file makes this module raise anything but :class:`ArticleError`.
"""

from __future__ import annotations

import difflib
import re
import reprlib
import unicodedata
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, tzinfo
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from pipeline.errors import ArticleError, Problem

ArticleStatus = Literal["queued", "draft"]


@dataclass(frozen=True)
class Article:
    """One article file, validated. ``send_after`` is timezone-aware (clinic zone)."""

    slug: str
    title: str
    path: Path
    body_markdown: str
    series: str | None = None
    part: int | None = None
    summary: str | None = None
    author: str | None = None
    canonical_url: str | None = None
    image: str | None = None
    send_after: datetime | None = None
    status: ArticleStatus = "queued"
    subject: str | None = None
    # Set by `newsletter import-feed`: the feed entry's key (guid, else link,
    # else a content hash) and a hash of what the feed said, to spot edits.
    feed_key: str | None = None
    feed_hash: str | None = None

    @property
    def subject_line(self) -> str:
        """The email subject: ``subject`` when set, else the title."""
        return self.subject or self.title


@dataclass(frozen=True)
class ArticleSet:
    """Every article in a folder that could be read, and every problem found."""

    articles: tuple[Article, ...]
    problems: tuple[Problem, ...]


SLUG_PATTERN = re.compile(r"[a-z0-9][a-z0-9-]*")
_SLUG_HINT = "lowercase letters, digits and hyphens, like hip-pain"
_DELIMITER = re.compile(r"^---[ \t]*$", re.MULTILINE)

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


class _Loader(yaml.SafeLoader):
    """A SafeLoader that leaves an impossible date (``2026-02-30``) as text.

    PyYAML raises a bare ValueError for those; kept as text, the field's own
    check reports it at the key's line like any other bad value.
    """

    def construct_yaml_timestamp(self, node: yaml.ScalarNode) -> date | str:  # type: ignore[override]
        try:
            return super().construct_yaml_timestamp(node)
        except (ValueError, OverflowError):
            return self.construct_scalar(node)


_Loader.add_constructor("tag:yaml.org,2002:timestamp", _Loader.construct_yaml_timestamp)


@dataclass(frozen=True)
class _Source:
    """A file's text split into front matter and body, with line lookup."""

    text: str
    yaml_text: str
    yaml_offset: int  # where yaml_text starts in text
    body: str

    def line_at(self, yaml_index: int) -> int:
        """The 1-based file line of a character index into ``yaml_text``."""
        return self.text.count("\n", 0, self.yaml_offset + yaml_index) + 1


def _split(text: str) -> _Source | str:
    """Split off the front matter, or say (as a message) why there is none."""
    first_end = text.find("\n")
    first_line = text if first_end < 0 else text[:first_end]
    if first_line.rstrip(" \t") != "---":
        return "no front matter: start the file with a --- block"
    start = first_end + 1
    closing = _DELIMITER.search(text, start) if first_end >= 0 else None
    if closing is None:
        return "front matter is not closed: add a --- line after it"
    body_start = text.find("\n", closing.end())
    body = "" if body_start < 0 else text[body_start + 1 :]
    return _Source(text, text[start : closing.start()], start, body)


def _decode(path: Path) -> tuple[str | None, Problem | None]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        return None, Problem(path, 1, f"cannot read the file: {exc.strerror or exc}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        return None, Problem(path, line, "not UTF-8 text: save the file as UTF-8")
    # Universal newlines, as an editor shows them: line numbers then agree.
    text = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    return text, None


def _yaml_problem(path: Path, source: _Source, exc: yaml.YAMLError) -> Problem:
    if isinstance(exc, yaml.reader.ReaderError):
        # PyYAML gives the offending character as its code point
        character = chr(exc.character) if isinstance(exc.character, int) else exc.character
        return Problem(
            path,
            source.line_at(exc.position),
            f"front matter contains a character YAML does not allow: {character!r}",
        )
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        line = source.line_at(mark.index) if mark is not None else 1
        message = f"broken YAML in front matter: {exc.problem or 'cannot parse'}"
        if exc.context and exc.context_mark is not None:
            context_line = source.line_at(exc.context_mark.index)
            if context_line != line:
                message += f" ({exc.context} at line {context_line})"
        return Problem(path, line, message)
    return Problem(path, 1, f"broken YAML in front matter: {exc}")


def _parse_yaml(path: Path, source: _Source) -> tuple[object, dict[str, int], list[Problem]]:
    """The front matter's data, the line of each top-level key, and any problems."""
    lines: dict[str, int] = {}
    problems: list[Problem] = []
    try:
        loader = _Loader(source.yaml_text)
        try:
            node = loader.get_single_node()
            if isinstance(node, yaml.MappingNode):
                # Read key lines before constructing: merge keys (<<) rewrite the node.
                for key_node, _value in node.value:
                    if not isinstance(key_node, yaml.ScalarNode):
                        continue
                    line = source.line_at(key_node.start_mark.index)
                    if key_node.value in lines:
                        first = lines[key_node.value]
                        problems.append(
                            Problem(
                                path,
                                line,
                                f"duplicate key {_shown(key_node.value)} (first at line {first})",
                            )
                        )
                    else:
                        lines[key_node.value] = line
            data: object = None if node is None else loader.construct_document(node)
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        return None, lines, [_yaml_problem(path, source, exc)]
    except RecursionError:
        return None, lines, [Problem(path, 1, "front matter is nested too deeply")]
    if data is None:
        data = {}
    if not isinstance(data, dict):
        line = source.line_at(node.start_mark.index) if node is not None else 1
        problems.append(Problem(path, line, "front matter must be `key: value` lines"))
    return data, lines, problems


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


def _read(path: Path, tz: ZoneInfo) -> tuple[Article | None, dict[str, int], list[Problem]]:
    """The article (None when there are problems), its key lines, and its problems."""
    text, unreadable = _decode(path)
    if text is None:
        return None, {}, [unreadable or Problem(path, 1, "cannot read the file")]
    source = _split(text)
    if isinstance(source, str):
        return None, {}, [Problem(path, 1, source)]
    data, lines, problems = _parse_yaml(path, source)
    if not isinstance(data, dict):
        return None, lines, problems
    # YAML allows keys like `1:` or `null:`; as text they are just unknown keys.
    fields = {key if isinstance(key, str) else str(key): value for key, value in data.items()}
    front: FrontMatter | None = None
    try:
        front = FrontMatter.model_validate(fields, context={"tz": tz})
    except ValidationError as exc:
        problems.extend(_validation_problems(path, exc, lines))
        # Pydantic skips whole-model checks once a field failed; run the
        # series/part check on the raw values so one pass reports everything.
        if not any(error["loc"] == () for error in exc.errors()):
            for key, message in _series_part_issues(fields.get("series"), fields.get("part")):
                problems.append(Problem(path, lines.get(key, 1), message))
    slug = path.stem
    if front is not None and front.slug is not None:
        slug = front.slug
    elif "slug" not in fields and not SLUG_PATTERN.fullmatch(slug):
        problems.append(
            Problem(
                path,
                1,
                f"the file name {path.name!r} is not a usable slug ({_SLUG_HINT}):"
                " rename the file or add `slug: ...`",
            )
        )
    if problems or front is None:
        return None, lines, sorted(problems, key=lambda problem: problem.line)
    article = Article(
        slug=slug,
        title=front.title,
        path=path,
        body_markdown=source.body,
        series=front.series,
        part=front.part,
        summary=front.summary,
        author=front.author,
        canonical_url=front.canonical_url,
        image=front.image,
        send_after=front.send_after,
        status=front.status,
        subject=front.subject,
        feed_key=front.feed_key,
        feed_hash=front.feed_hash,
    )
    return article, lines, []


def read_article(path: Path, tz: ZoneInfo) -> Article:
    """Read one article file; raise :class:`ArticleError` with every problem in it.

    ``tz`` is the clinic's timezone: a ``send_after`` date means 00:00 there, and
    a time without an offset is a time there.
    """
    article, _lines, problems = _read(path, tz)
    if problems or article is None:
        raise ArticleError(problems or [Problem(path, 1, "cannot read the article")])
    return article


def front_matter_line(path: Path, key: str) -> int:
    """The line of top-level ``key:`` in a file's front matter, or 1 if not found."""
    text, _problem = _decode(path)
    if text is None:
        return 1
    source = _split(text)
    if isinstance(source, str):
        return 1
    pattern = re.compile(rf"^[\"']?{re.escape(key)}[\"']?[ \t]*:", re.MULTILINE)
    match = pattern.search(source.yaml_text)
    return 1 if match is None else source.line_at(match.start())


def load_articles(directory: Path, tz: ZoneInfo) -> ArticleSet:
    """Read every ``*.md`` in ``directory`` (by name); never stop at a bad file.

    Besides each file's own problems, a slug used twice or a part number used
    twice in one series is reported at the later file, which is left out.
    Hidden files (editor locks and backups such as ``.#x.md``) are skipped.
    """
    if not directory.is_dir():
        why = "is not a folder" if directory.exists() else "articles folder not found"
        return ArticleSet((), (Problem(directory, 1, why),))
    try:
        paths = sorted(path for path in directory.glob("*.md") if not path.name.startswith("."))
    except OSError as exc:
        return ArticleSet((), (Problem(directory, 1, f"cannot list: {exc.strerror or exc}"),))
    articles: list[Article] = []
    problems: list[Problem] = []
    by_slug: dict[str, Article] = {}
    by_part: dict[tuple[str, int], Article] = {}
    for path in paths:
        article, lines, found = _read(path, tz)
        problems.extend(found)
        if article is None:
            continue
        clashes: list[Problem] = []
        if article.slug in by_slug:
            first = by_slug[article.slug]
            clashes.append(
                Problem(
                    path,
                    lines.get("slug", 1),
                    f"duplicate slug {article.slug!r}: {first.path} already uses it",
                )
            )
        if article.series is not None and article.part is not None:
            first_part = by_part.get((article.series, article.part))
            if first_part is not None:
                clashes.append(
                    Problem(
                        path,
                        lines.get("part", 1),
                        f"duplicate part {article.part} in series {article.series!r}:"
                        f" {first_part.path} is already part {article.part}",
                    )
                )
        if clashes:
            problems.extend(clashes)
            continue
        by_slug[article.slug] = article
        if article.series is not None and article.part is not None:
            by_part[(article.series, article.part)] = article
        articles.append(article)
    return ArticleSet(tuple(articles), tuple(problems))
