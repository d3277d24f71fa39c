"""Read and validate article files (Markdown + YAML front matter) into records."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

from .errors import Problem

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

    @property
    def subject_line(self) -> str:
        """The email subject: ``subject`` when set, else the title."""
        return self.subject or self.title


@dataclass(frozen=True)
class ArticleSet:
    """Every article in a folder that could be read, and every problem found."""

    articles: tuple[Article, ...]
    problems: tuple[Problem, ...]
