"""Article + series links + settings -> one :class:`RenderedIssue`; a cheap per-recipient merge.

An issue is rendered ONCE per campaign: Markdown -> sanitized HTML -> Jinja2 fills the
MJML template -> MJML makes email HTML -> CSS is inlined. What differs per recipient
(their first name, their unsubscribe link) is left in the output as ``%%name%%``
placeholders, which :class:`Personalizer` (or SendGrid's substitutions) fills in later.

The rooms, in the order an issue passes through them: :mod:`.markdown` (Markdown ->
sanitized HTML), :mod:`.html_text` (the plain-text twin), :mod:`.text` (its
line width and wrapping, the preheader), :mod:`.theme` (colours
from the brand colour), :mod:`.templates` (Jinja2, MJML, CSS inlining), :mod:`.issue`
(the template context and :func:`render_issue`), :mod:`.personalize` (the
per-recipient merge) and :mod:`.message` (the MIME message).
"""

from __future__ import annotations

from pipeline.content.series import series_title
from pipeline.render.html_text import html_to_text
from pipeline.render.issue import AuthorView, RenderedIssue, render_issue
from pipeline.render.markdown import ARTICLE_IMAGE_WIDTH, markdown_to_html, sized_images
from pipeline.render.personalize import PLACEHOLDERS, Personalization, Personalizer, placeholder
from pipeline.render.templates import DEFAULT_TEMPLATES_DIR, HTML_TEMPLATE, TEXT_TEMPLATE
from pipeline.render.text import PREHEADER_LENGTH, TEXT_WIDTH, single_line
from pipeline.render.theme import Theme, contrast

__all__ = [
    "ARTICLE_IMAGE_WIDTH",
    "DEFAULT_TEMPLATES_DIR",
    "HTML_TEMPLATE",
    "PLACEHOLDERS",
    "PREHEADER_LENGTH",
    "TEXT_TEMPLATE",
    "TEXT_WIDTH",
    "AuthorView",
    "Personalization",
    "Personalizer",
    "RenderedIssue",
    "Theme",
    "contrast",
    "html_to_text",
    "markdown_to_html",
    "placeholder",
    "render_issue",
    "series_title",
    "single_line",
    "sized_images",
]
