"""The plain-text twin's rules: line width, wrapping, and the one-line header values.

Long lines wrap at :data:`TEXT_WIDTH` without breaking a word, so never a URL
(:mod:`.html_text` lays the article out with :func:`wrap_words`). The preheader (the grey
line inbox lists show after the subject) comes from the article's summary or its first
words.
"""

from __future__ import annotations

import functools
import re
from typing import Final

from pipeline.content.articles import Article

PREHEADER_LENGTH: Final = 140
#: Plain-text line width: fits every mail client without their own re-wrapping.
TEXT_WIDTH: Final = 76


@functools.lru_cache(maxsize=16)
def _line_of(width: int) -> re.Pattern[str]:
    # The longest run of up to ``width`` characters that ends before a space or at the
    # end; failing that (a word longer than a line, e.g. a URL), the whole word.
    return re.compile(f"(.{{1,{width}}})(?: |$)|([^ ]+)(?: |$)")


def wrap_words(line: str, width: int) -> list[str]:
    """Cut a line of words separated by single spaces into lines of at most ``width``.

    A line breaks only at a space, so a word longer than ``width`` (a URL) stands
    alone on its line, whole. For such a line this is what ``textwrap.wrap(line,
    width, break_long_words=False, break_on_hyphens=False)`` gives
    (tests/render/test_text_wrap.py holds the two to the same lines), in one regex
    pass: textwrap moved words one by one and was a sixth of the time to render
    an issue.
    """
    if len(line) <= width:
        return [line] if line else []
    # max: a list nested past the width still gets a word a line
    return [short or long for short, long in _line_of(max(width, 1)).findall(line)]


_BREAKS_RE: Final = re.compile(r"[\s\x00-\x1f\x7f]+")


def single_line(value: str) -> str:
    """Collapse CR, LF, tabs and other control characters to single spaces (header-safe)."""
    return _BREAKS_RE.sub(" ", value).strip()


def preheader_for(article: Article, words_only: str) -> str:
    """The article's summary, else its first words cut at a word near 140 characters."""
    if article.summary and article.summary.strip():
        return single_line(article.summary)
    text = single_line(words_only)
    if len(text) <= PREHEADER_LENGTH:
        return text
    cut = text[: PREHEADER_LENGTH + 1].rsplit(" ", 1)[0].rstrip(" ,.;:-\u2013\u2014")
    return cut + "…"


def collapse_blank_lines(text: str) -> str:
    """Trailing spaces gone and runs of blank lines cut to one (template output is loose)."""
    text = "\n".join(line.rstrip() for line in text.splitlines())
    return re.sub(r"\n{3,}", "\n\n", text).strip("\n") + "\n"
