"""The plain-text twin's rules: line width, wrapping, and the one-line header values.

Long lines wrap at :data:`TEXT_WIDTH` without breaking a word, so never a URL
(:mod:`.html_text` lays the article out with :func:`wrap_line`). The preheader (the grey
line inbox lists show after the subject) comes from the article's summary or its first
words.
"""

from __future__ import annotations

import re
import textwrap
from typing import Final

from pipeline.content.articles import Article

PREHEADER_LENGTH: Final = 140
#: Plain-text line width: fits every mail client without their own re-wrapping.
TEXT_WIDTH: Final = 76


# Whitespace other than a plain space, e.g. a tab or a no-break space inside <pre>.
_NOT_PLAIN_SPACE_RE: Final = re.compile(r"[^\S ]")
#: A word or a run of spaces: textwrap's chunks once only plain spaces are left.
_CHUNK_RE: Final = re.compile(" +|[^ ]+")


def _break_after(text: str, pos: int, room: int) -> int:
    """Where the line starting at ``pos`` ends: the last word/space boundary that fits in
    ``room``, else after the one word (or leading spaces) too long for any line."""
    limit = pos + room
    if limit >= len(text):
        return len(text)
    if room > 0:
        if text[limit] == " ":  # the margin is in a run of spaces: break where it starts
            run_start = pos + len(text[pos:limit].rstrip(" "))
            if run_start > pos:
                return run_start
        else:  # the margin is in a word: break before the word
            space = text.rfind(" ", pos, limit)
            if space >= 0:
                return space + 1
    chunk = _CHUNK_RE.match(text, pos)
    return chunk.end() if chunk else len(text)


def wrap_line(line: str, width: int, indent: str) -> list[str]:
    """``textwrap.wrap(line, width, subsequent_indent=indent, break_long_words=False,
    break_on_hyphens=False)``, the same lines, several times faster.

    WHY not textwrap itself: it splits every paragraph into word and space chunks and
    moves them one by one, a sixth of the time to render an issue. Here each line is cut
    with a few string searches. A line with whitespace other than plain spaces (rare:
    the layout collapses whitespace outside <pre>) still goes to textwrap, whose rules
    for tabs and Unicode spaces this does not repeat. tests/render/test_text_wrap.py
    holds the two to the same output.
    """
    if _NOT_PLAIN_SPACE_RE.search(line):
        return textwrap.wrap(
            line,
            width=width,
            subsequent_indent=indent,
            break_long_words=False,
            break_on_hyphens=False,
        )
    lines: list[str] = []
    pos, prefix, room = 0, "", width
    while pos < len(line):
        end = _break_after(line, pos, room)
        # the space run a line ends with is dropped (textwrap's drop_whitespace)
        if kept := line[pos:end].rstrip(" "):
            lines.append(prefix + kept)
            prefix, room = indent, width - len(indent)
        pos = end
        if lines and pos < len(line) and line[pos] == " ":
            run = _CHUNK_RE.match(line, pos)  # nor does the next one start with it
            pos = run.end() if run else len(line)
    return lines


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
