"""Read and validate article files (Markdown + YAML front matter) into records.

An article file starts with a ``---`` block of YAML front matter and goes on with
the Markdown body. Every problem is reported as ``path:line: message`` with the
line of the key at fault, so a writer can jump straight to it; nothing a writer
can put in a file makes this module raise anything but :class:`ArticleError`.

Parsing the text and YAML lives in :mod:`pipeline.content.article_text`, the field
checks in :mod:`pipeline.content.front_matter`; this module holds the records and
puts them together. The names those modules define that callers use are
re-exported here, so ``from pipeline.content.articles import ...`` keeps working.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from pipeline.content.article_text import _decode, _parse_yaml, _split, front_matter_line
from pipeline.content.front_matter import (
    _SLUG_HINT,
    SLUG_PATTERN,
    ArticleStatus,
    FrontMatter,
    _series_part_issues,
    _validation_problems,
)
from pipeline.content.reserved import reserved_reason
from pipeline.errors import ArticleError, Problem

__all__ = [
    "SLUG_PATTERN",
    "Article",
    "ArticleError",
    "ArticleSet",
    "ArticleStatus",
    "FrontMatter",
    "front_matter_line",
    "load_articles",
    "read_article",
]


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
        if (reserved := reserved_reason(article.slug)) is not None:
            clashes.append(Problem(path, lines.get("slug", 1), reserved))
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
