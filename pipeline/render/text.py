"""HTML -> the plain-text twin, and the one-line values the headers carry.

The text part of every email is made from the same sanitized HTML as the HTML part:
inscriptis lays it out, links become ``text (url)``, headings are underlined and long
lines wrap at :data:`TEXT_WIDTH` without breaking a URL. The preheader (the grey line
inbox lists show after the subject) comes from the article's summary or its first words.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Mapping
from typing import Any, Final

from inscriptis import get_text
from inscriptis.model.config import ParserConfig
from inscriptis.model.tag import CustomHtmlTagHandlerMapping

from pipeline.content.articles import Article

PREHEADER_LENGTH: Final = 140
#: Plain-text line width: fits every mail client without their own re-wrapping.
TEXT_WIDTH: Final = 76


# -- HTML -> plain text --------------------------------------------------------------

# inscriptis writes links as [text](url); we want "text (url)", and just "url" when the
# text is the URL. Private-use characters mark links and headings so that link text
# may hold brackets; any such character in the input is dropped first.
_LINK_OPEN, _LINK_MID, _LINK_CLOSE, _HEADING = "\ue000", "\ue001", "\ue002", "\ue003"
_MARKERS_RE: Final = re.compile(f"[{_LINK_OPEN}{_LINK_MID}{_LINK_CLOSE}{_HEADING}]")
_MARKED_LINK_RE: Final = re.compile(f"{_LINK_OPEN}(.*?){_LINK_MID}(.*?){_LINK_CLOSE}", re.S)
_HEADING_TAG_RE: Final = re.compile(r"<(h[1-4])>")
_MARKED_HEADING_RE: Final = re.compile(f"^( *){_HEADING}(.*)$", re.M)


def _link_start(state: Any, attrs: Mapping[str, str]) -> None:
    state.link_target = attrs.get("href", "")
    if state.link_target:
        state.tags[-1].write(_LINK_OPEN)


def _link_end(state: Any) -> None:
    if state.link_target:
        state.tags[-1].write(_LINK_MID + state.link_target + _LINK_CLOSE)


_TEXT_CONFIG: Final = ParserConfig(
    custom_html_tag_handler_mapping=CustomHtmlTagHandlerMapping(
        start_tag_mapping={"a": _link_start}, end_tag_mapping={"a": _link_end}
    )
)


def _link_as_text(match: re.Match[str]) -> str:
    text, url = match.group(1).strip(), match.group(2)
    shown = url.removeprefix("mailto:")
    return shown if text in (url, shown) else f"{text} ({shown})"


def _underline(match: re.Match[str]) -> str:
    indent, heading = match.group(1), match.group(2).rstrip()
    rule = "-" * min(len(heading), TEXT_WIDTH - len(indent))
    return f"{indent}{heading}\n{indent}{rule}"


_LIST_ITEM_RE: Final = re.compile(r"\s*(?:[*+\-•]|\d+\.)\s+|\s*")


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


def _wrap_line(line: str, width: int, indent: str) -> list[str]:
    """``textwrap.wrap(line, width, subsequent_indent=indent, break_long_words=False,
    break_on_hyphens=False)``, the same lines, several times faster.

    WHY not textwrap itself: it splits every paragraph into word and space chunks and
    moves them one by one, a sixth of the time to render an issue. Here each line is cut
    with a few string searches. A line with whitespace other than plain spaces (rare:
    inscriptis collapses whitespace outside <pre>) still goes to textwrap, whose rules
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


def _wrap(text: str, width: int = TEXT_WIDTH) -> str:
    """Wrap long lines, keeping list items' hanging indent and never breaking a URL."""
    lines: list[str] = []
    for line in text.splitlines():
        if len(line) <= width:
            lines.append(line.rstrip())
            continue
        prefix = _LIST_ITEM_RE.match(line)
        indent = " " * (prefix.end() if prefix else 0)
        lines.extend(_wrap_line(line, width, indent))
    return "\n".join(lines)


def html_to_text(fragment: str) -> tuple[str, str]:
    """Plain text of a sanitized HTML fragment: ``(with link URLs, wrapped; words only)``.

    Headings are underlined; a link becomes ``text (url)``.
    """
    fragment = _HEADING_TAG_RE.sub(rf"<\1>{_HEADING}", _MARKERS_RE.sub("", fragment))
    raw = get_text(fragment, _TEXT_CONFIG)
    with_links = _MARKED_HEADING_RE.sub(_underline, _MARKED_LINK_RE.sub(_link_as_text, raw))
    words_only = _MARKERS_RE.sub("", _MARKED_LINK_RE.sub(lambda m: m.group(1), raw))
    return _wrap(with_links).strip("\n"), words_only


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
