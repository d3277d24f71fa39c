"""Markdown -> sanitized email HTML: the article body as it may appear in an email.

Markdown (inline HTML allowed) is rendered by markdown-it (markdown-it-pyrs, its Rust
port: the same CommonMark output as markdown-it-py, a twentieth of the time, which was
half of rendering an issue), then cleaned by the email
profile of :mod:`pipeline.content.sanitize` so nothing that runs, submits, embeds or
restyles the message survives; relative links are resolved against the article's page or
dropped. Images get a pixel width so Outlook keeps them inside the 600 px card.
"""

from __future__ import annotations

import re
from typing import Final

from markdown_it_pyrs import MarkdownIt

from pipeline.content.sanitize import clean_email_html

# -- Markdown -> safe HTML -----------------------------------------------------------

# CommonMark passes inline HTML through (nh3 cleans it below), plus GFM tables and ~~strike~~.
_markdown: Final = MarkdownIt("commonmark").enable_many(["table", "strikethrough"])


#: The article column's width in pixels (600 px card less 2 x 32 px padding).
ARTICLE_IMAGE_WIDTH: Final = 536
_IMG_RE: Final = re.compile(r"<img\b([^>]*?)\s*/?>")
_WIDTH_ATTR_RE: Final = re.compile(r'\swidth="(\d*)[^"]*"')
_HEIGHT_ATTR_RE: Final = re.compile(r'\sheight="[^"]*"')


def _sized_image(match: re.Match[str]) -> str:
    attrs = match.group(1)
    width = _WIDTH_ATTR_RE.search(attrs)
    if width and width.group(1) and 0 < int(width.group(1)) <= ARTICLE_IMAGE_WIDTH:
        return match.group(0)  # the author's own smaller width
    # A height that went with another width would distort the image: CSS keeps height:auto.
    attrs = _HEIGHT_ATTR_RE.sub("", _WIDTH_ATTR_RE.sub("", attrs))
    return f'<img{attrs} width="{ARTICLE_IMAGE_WIDTH}">'


def sized_images(fragment: str) -> str:
    """Give every image a pixel ``width`` (536, or the author's smaller one).

    Outlook for Windows ignores ``max-width`` on images: without the attribute
    a large image shows at its natural size and breaks the 600 px card.
    """
    return _IMG_RE.sub(_sized_image, fragment)


def markdown_to_html(markdown: str, *, base_url: str | None = None) -> str:
    """Render Markdown (inline HTML allowed) and sanitize it with an email allow-list.

    The result is always nh3-clean: no script, style, iframe, form, event handler or
    ``javascript:`` URL survives. Relative URLs are resolved against ``base_url``
    (an absolute http(s) URL) or removed when there is none.
    """
    return clean_email_html(_markdown.render(markdown), base_url=base_url)
