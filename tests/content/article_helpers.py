"""Shared by the article-file tests (tests/content/test_article_*.py).

Reading and validating article files: every mistake is `path:line: message`.
"""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo

SYDNEY = ZoneInfo("Australia/Sydney")


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path
