"""Sanitized HTML -> the text part's body: blocks laid out, indented and wrapped.

An article reaches the text part as the same sanitized HTML the HTML part shows, so
it holds only the email profile's tags (:data:`pipeline.content.sanitize.EMAIL`):
paragraphs, headings, lists, quotes, code, rules, line breaks, links, images and
tables. Their plain-text form:

- paragraphs and headings are separated by a blank line; h1-h4 are underlined;
- list items are bulleted (``*``, then ``+``, ``o``, ``-`` when nested) or numbered
  from ``<ol start>``, their wrapped lines hanging under the text;
- a quote's lines start with ``>``; ``<pre>`` keeps its lines as written, unwrapped;
- a link is ``text (url)``, or just the URL when the text is the URL;
- images are left out (the HTML part shows them); a rule is ``* * *``;
- table cells line up in columns two spaces apart.

Paragraphs wrap at :data:`~pipeline.render.text.TEXT_WIDTH` less their indent, never
inside a word, so a URL is never broken.

WHY our own layout: inscriptis, used before, models CSS for any web page and took
half the time of rendering a whole issue (a per-character Python loop); the dozen
tags an article may hold fit in this module. lxml (which inscriptis parsed with too)
builds the tree.
"""

from __future__ import annotations

import re
from typing import Any, Final

from lxml import etree

from pipeline.render.text import TEXT_WIDTH, wrap_words

# Blank lines before and after a block; they collapse with a neighbour's (the larger
# wins), also through a list item or a quote, as CSS margins do.
_MARGINS: Final = {
    **dict.fromkeys(("p", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote"), 1),
    **dict.fromkeys(("pre", "hr", "table", "figure", "dl"), 1),
    **dict.fromkeys(("ul", "ol", "li", "div", "section", "article", "header"), 0),
    **dict.fromkeys(("footer", "nav", "main", "aside", "address", "figcaption"), 0),
    **dict.fromkeys(("dt", "dd", "thead", "tbody", "tfoot", "tr", "caption"), 0),
}
_UNDERLINED: Final = frozenset({"h1", "h2", "h3", "h4"})
_HIDDEN: Final = frozenset({"head", "title", "script", "style", "template", "img"})
# Plain lxml elements: lxml.html's element classes cost a Python call per element.
_PARSER: Final = etree.HTMLParser(remove_comments=True, remove_pis=True)
_BULLETS: Final = ("*", "+", "o", "-")
_RULE: Final = "* * *"
_QUOTE: Final = "> "
_INDENT: Final = 4  # a list item's text, under its bullet or number

# ASCII whitespace as str.split sees it: HTML's collapsible whitespace, and VT and the
# information separators (not the no-break space, which holds words together).
_HTML_SPACE_RE: Final = re.compile(r"[\t\n\x0b\x0c\r\x1c-\x1f ]+")
# <br>: a private-use character, so it outlives the collapsing of whitespace (any such
# character in the input is dropped first).
_BREAK: Final = "\ue004"


def _collapsed(text: str) -> str:
    """Every run of whitespace one space, none at the ends: HTML's rule for text."""
    if text.isascii():  # WHY: str.split is several times faster than the regex
        return " ".join(text.split())
    return _HTML_SPACE_RE.sub(" ", text).strip(" ")


class _Inline:
    """Running text of one paragraph, as written: as shown (links with URLs) and words only.

    Whitespace is collapsed once per paragraph, when its lines are taken.
    """

    __slots__ = ("differs", "shown", "words")

    def __init__(self) -> None:
        self.shown: list[str] = []
        self.words: list[str] = []
        self.differs = False  # a link: the words-only text must be laid out on its own

    def add(self, shown: str | None, words: str | None = None) -> None:
        if shown:
            self.shown.append(shown)
            if words is None or words == shown:
                self.words.append(shown)
            else:
                self.words.append(words)
                self.differs = True

    def lines(self) -> tuple[list[str], list[str]]:
        shown = _broken_lines("".join(self.shown))
        return shown, _broken_lines("".join(self.words)) if self.differs else shown


def _broken_lines(text: str) -> list[str]:
    """The lines of a paragraph: split at ``<br>``, collapsed, empty ends dropped."""
    if _BREAK not in text:
        line = _collapsed(text)
        return [line] if line else []
    lines = [_collapsed(line) for line in text.split(_BREAK)]
    while lines and not lines[-1]:
        lines.pop()
    while lines and not lines[0]:
        del lines[0]
    return lines


class _Flow:
    """The laid-out lines of one block, with the blank lines it wants around it."""

    __slots__ = ("bottom", "lines", "top", "words")

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.words: list[str] = []
        self.top = 0
        self.bottom = 0

    def margin(self, blank_lines: int) -> None:
        if self.lines:
            self.bottom = max(self.bottom, blank_lines)
        else:
            self.top = max(self.top, blank_lines)

    def extend(self, lines: list[str]) -> None:
        if not lines:
            return
        if self.lines and self.bottom:
            self.lines.extend([""] * self.bottom)
        self.bottom = 0
        self.lines.extend(lines)

    def nest(self, child: _Flow, first: str = "", rest: str | None = None) -> None:
        """Add ``child``'s lines, the first after ``first``, the others after ``rest``."""
        self.margin(child.top)
        rest = first if rest is None else rest
        if first or rest:
            # An empty list item still shows its bullet; an empty quote shows nothing.
            shown = child.lines or ([""] if first != rest else [])
            lines = [
                (first if i == 0 else rest) + line if line else (first if i == 0 else rest).rstrip()
                for i, line in enumerate(shown)
            ]
        else:
            lines = child.lines
        self.extend(lines)
        self.words.extend(child.words)
        self.margin(child.bottom)


def _tag(element: Any) -> str | None:
    tag = element.tag  # lower case from the HTML parser
    return tag if isinstance(tag, str) else None  # None: a comment


class _Layout:
    """Walks the parsed fragment, block by block."""

    def __init__(self) -> None:
        self.list_depth = 0

    def block(self, element: Any, width: int) -> _Flow:
        tag = _tag(element)
        if tag in ("ul", "ol"):
            flow = self.list(element, tag, width)
        elif tag == "blockquote":
            flow = _Flow()
            flow.nest(self.container(element, width - len(_QUOTE)), _QUOTE)
        elif tag == "pre":
            flow = _preformatted(element)
        elif tag == "hr":
            flow = _Flow()
            flow.extend([_RULE])
        elif tag == "table":
            flow = self.table(element)
        else:
            flow = self.container(element, width)
            if tag in _UNDERLINED and flow.lines:
                flow.lines.append("-" * min(max(map(len, flow.lines)), width))
        margin = _MARGINS.get(tag or "", 0)
        flow.margin(margin)  # before, or after when it has lines
        if flow.lines:
            flow.top = max(flow.top, margin)
        return flow

    def container(self, element: Any, width: int) -> _Flow:
        """A block's own text and inline elements as paragraphs, between its child blocks."""
        flow, inline = _Flow(), _Inline()
        inline.add(element.text)
        for child in element:
            if _tag(child) in _MARGINS:
                _flush(flow, inline, width)
                inline = _Inline()
                flow.nest(self.block(child, width))
            else:
                self.inline(child, inline)
            inline.add(child.tail)
        _flush(flow, inline, width)
        return flow

    def inline(self, element: Any, inline: _Inline) -> None:
        tag = _tag(element)
        if tag is None or tag in _HIDDEN:
            return
        if tag == "br":
            inline.add(_BREAK)
            return
        inner = _Inline()
        inner.add(element.text)
        for child in element:
            self.inline(child, inner)
            inner.add(child.tail)
        shown, words = "".join(inner.shown), "".join(inner.words)
        if tag == "a" and (href := element.get("href")):
            shown = _link(shown, href)
        elif tag == "q":
            shown, words = f'"{shown}"', f'"{words}"'
        inline.add(shown, words)

    def list(self, element: Any, tag: str, width: int) -> _Flow:
        flow = _Flow()
        number = _start(element.get("start")) if tag == "ol" else 0
        bullet = _BULLETS[self.list_depth % len(_BULLETS)]
        self.list_depth += 1
        for item in element:
            if _tag(item) != "li":
                continue
            mark = f"{number}. " if tag == "ol" else f"{bullet} "
            first = mark.rjust(_INDENT)
            flow.nest(self.block(item, width - len(first)), first, " " * len(first))
            number += 1
        self.list_depth -= 1
        return flow

    def table(self, element: Any) -> _Flow:
        rows: list[list[str]] = []
        words: list[str] = []
        for row in element.iter("tr"):
            cells = []
            for cell in row:
                if _tag(cell) in ("td", "th"):
                    inline = _Inline()
                    self.inline(cell, inline)
                    shown, said = inline.lines()
                    cells.append(" ".join(shown))
                    words.extend(said)
            rows.append(cells)
        widths = [
            max(len(r[i]) for r in rows if i < len(r))
            for i in range(max(map(len, rows), default=0))
        ]
        flow = _Flow()
        flow.extend(
            ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)).rstrip() for r in rows]
        )
        flow.words.extend(words)
        return flow


def _link(text: str, href: str) -> str:
    """``text (url)``; the URL alone when the text is the URL (``mailto:`` not shown)."""
    shown = href.removeprefix("mailto:")
    label = _collapsed(text)
    if label and label not in (href, shown):
        shown = f"{label} ({shown})"
    # the spaces around the words stay outside the link, as the reader sees them
    before = " " if text[:1].isspace() else ""
    return before + shown + (" " if text[-1:].isspace() else "")


def _start(value: str | None) -> int:
    try:
        return int(value or 1)
    except ValueError:
        return 1


def _flush(flow: _Flow, inline: _Inline, width: int) -> None:
    shown, words = inline.lines()
    lines: list[str] = []
    for line in shown:
        lines.extend(wrap_words(line, width))
    flow.extend(lines)
    flow.words.extend(words)


def _preformatted(element: Any) -> _Flow:
    text = "".join(element.itertext())
    lines = [line.rstrip() for line in text.split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    while lines and not lines[0]:
        del lines[0]
    flow = _Flow()
    flow.extend(lines)
    flow.words.append(text)
    return flow


def html_to_text(fragment: str, width: int = TEXT_WIDTH) -> tuple[str, str]:
    """Plain text of a sanitized HTML fragment: ``(laid out and wrapped, words only)``.

    The words-only text (no URLs, bullets or underlines) is what a preheader is cut from.
    """
    if not fragment.strip():
        return "", ""
    document = f"<html><body>{fragment.replace(_BREAK, '')}</body></html>"
    body = etree.fromstring(document, _PARSER).find("body")
    flow = _Layout().container(body, width)
    return "\n".join(line.rstrip() for line in flow.lines), "\n".join(flow.words)
