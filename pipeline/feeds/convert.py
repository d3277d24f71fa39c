"""Feed HTML -> article text: sanitized (the feed profile), then Markdown when lossless.

markdownify writes the Markdown; it is rendered back and compared with the HTML
(every word and every link and image URL). When something would be lost, the
sanitized HTML itself becomes the body, as one raw HTML block.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Final

from markdownify import MarkdownConverter

from pipeline.content.sanitize import clean_feed_html
from pipeline.render.markdown import markdown_to_html


def sanitize_html(fragment: str, *, base_url: str) -> str:
    """Clean feed HTML with nh3, resolving relative links and images against ``base_url``.

    No script, style, iframe, form, input, object, svg, event handler,
    ``javascript:``, ``data:`` or other non-web URL survives; an image left
    without a source is removed. The policy is the feed profile of
    :mod:`pipeline.content.sanitize`.
    """
    return clean_feed_html(fragment, base_url=base_url)


_to_markdown: Final = MarkdownConverter(
    heading_style="ATX",
    bullets="-",
    escape_misc=True,
    strong_em_symbol="*",
    newline_style="backslash",
).convert


def html_to_body(clean_html: str) -> str:
    """An article body for sanitized HTML: Markdown when it keeps every word and link.

    The Markdown is rendered back and compared with the HTML (text and URLs);
    if anything would be lost, the sanitized HTML itself becomes the body, as
    one raw HTML block (which render sanitizes again).
    """
    markdown = _to_markdown(clean_html).strip()
    if _fingerprint(markdown_to_html(markdown)) == _fingerprint(clean_html):
        return markdown + "\n"
    return _html_block(clean_html)


def _html_block(clean_html: str) -> str:
    # A Markdown raw HTML block ends at the first blank line; what follows would be
    # read as Markdown. So: no blank lines, and newlines inside <pre> as entities.
    def keep_pre(match: re.Match[str]) -> str:
        return match.group(0).replace("\n", "&#10;")

    flat = re.sub(r"<pre\b.*?</pre>", keep_pre, clean_html, flags=re.DOTALL)
    flat = re.sub(r"\n[ \t]*(?=\n)", "", flat).strip()
    return f"<div>\n{flat}\n</div>\n"


class _Fingerprint(HTMLParser):
    """Every character of text (whitespace aside) and every link and image URL."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.text: list[str] = []
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if (tag, name) in {("a", "href"), ("img", "src")} and value:
                self.urls.append(value)

    def handle_data(self, data: str) -> None:
        self.text.append("".join(data.split()))


def _fingerprint(fragment: str) -> tuple[str, tuple[str, ...]]:
    parser = _Fingerprint()
    parser.feed(fragment)
    parser.close()
    return "".join(parser.text), tuple(parser.urls)
