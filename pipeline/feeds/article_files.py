"""Writing imported articles: front matter + body, as files that `newsletter check` accepts.

A new file never replaces an existing one (it takes the next free slug), and every
write goes through a hidden temporary file, so an interrupted import leaves no
half-written article behind.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import yaml

from pipeline.content.articles import Article, FrontMatter
from pipeline.feeds.records import FeedItem, ImportOptions


def _front_matter(fields: dict[str, object]) -> str:
    data = {key: value for key, value in fields.items() if value is not None}
    # Validated exactly as `check` will read it back: a file we write always passes.
    FrontMatter.model_validate(data)
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=1_000_000)
    return f"---\n{text}---\n"


def _article_text(item: FeedItem, fields: dict[str, object]) -> str:
    return _front_matter(fields) + item.body


def _new_fields(item: FeedItem, options: ImportOptions, part: int) -> dict[str, object]:
    return {
        "title": item.title,
        "series": options.series,
        "part": part,
        "status": options.status,
        "summary": item.summary,
        "author": item.author,
        "canonical_url": item.link,
        "image": item.image,
        "feed_key": item.key,
        "feed_hash": item.content_hash,
    }


def _updated_fields(item: FeedItem, article: Article) -> dict[str, object]:
    # The writer's choices (slug, series, part, status, timing, subject) stay;
    # what the blog says (title, text, links, image) is taken from the feed.
    send_after = article.send_after.isoformat() if article.send_after else None
    slug = article.slug if article.slug != article.path.stem else None
    return {
        "title": item.title,
        "series": article.series,
        "part": article.part,
        "slug": slug,
        "status": article.status,
        "send_after": send_after,
        "subject": article.subject,
        "summary": item.summary,
        "author": item.author,
        "canonical_url": item.link,
        "image": item.image,
        "feed_key": item.key,
        "feed_hash": item.content_hash,
    }


def _write_new(directory: Path, slug: str, text: str, taken: set[str]) -> tuple[str, Path]:
    """Write a new file under a free slug; never replace an existing file."""
    base, number = slug, 1
    while True:
        if slug not in taken:
            path = directory / f"{slug}.md"
            temp = _temp_file(directory, text)
            try:
                # link() fails if the name exists, even if another process just made it
                os.link(temp, path)
                return slug, path
            except FileExistsError:
                pass
            finally:
                temp.unlink(missing_ok=True)
        taken.add(slug)
        number += 1
        slug = f"{base}-{number}"


def _rewrite(path: Path, text: str) -> None:
    os.replace(_temp_file(path.parent, text), path)


def _temp_file(directory: Path, text: str) -> Path:
    # A hidden name: load_articles skips it should we be interrupted mid-write.
    handle, name = tempfile.mkstemp(dir=directory, prefix=".import-", suffix=".tmp")
    with os.fdopen(handle, "w", encoding="utf-8", newline="\n") as stream:
        stream.write(text)
    return Path(name)
