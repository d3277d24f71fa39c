"""Article + series navigation + settings -> one :class:`RenderedIssue` for a campaign.

This is where the pieces meet: the article body goes Markdown -> sanitized HTML
(:mod:`.markdown`) -> plain text (:mod:`.html_text`), the template context is built (the
article, its series navigation, the author card, the clinic's colours, placeholders),
and the two templates are rendered (:mod:`.templates`). A new value shown in the
email is added to the context here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from markupsafe import Markup

from pipeline.config import Settings
from pipeline.content.articles import Article
from pipeline.content.series import SeriesNav
from pipeline.render.html_text import html_to_text
from pipeline.render.markdown import markdown_to_html, sized_images
from pipeline.render.personalize import PLACEHOLDERS, placeholder
from pipeline.render.templates import (
    HTML_TEMPLATE,
    TEXT_TEMPLATE,
    mjml_to_html,
    render_template,
    template_environment,
)
from pipeline.render.text import (
    TEXT_WIDTH,
    collapse_blank_lines,
    preheader_for,
    single_line,
)
from pipeline.render.theme import Theme


@dataclass(frozen=True)
class RenderedIssue:
    """One campaign's email, the same for every recipient until personalized."""

    slug: str
    subject: str
    preheader: str
    html: str
    text: str


@dataclass(frozen=True)
class AuthorView:
    """The author card under the article."""

    name: str
    bio: str | None
    photo_url: str | None


def _author_view(article: Article, settings: Settings) -> AuthorView | None:
    if not article.author or article.author not in settings.authors:
        return None
    author = settings.authors[article.author]
    return AuthorView(name=article.author, bio=author.bio, photo_url=author.photo_url)


def render_issue(
    article: Article, nav: SeriesNav | None, settings: Settings, *, archive_url: str
) -> RenderedIssue:
    """Render ``article`` once for a whole campaign, placeholders left for each recipient.

    Raises :class:`TemplateError` naming the template file (and line) when a template
    is missing or broken.
    """
    body_html = sized_images(
        markdown_to_html(article.body_markdown, base_url=article.canonical_url)
    )
    body_text, words_only = html_to_text(body_html)
    preheader = preheader_for(article, words_only)
    context: dict[str, Any] = {
        "article": article,
        "title": single_line(article.title),
        "subject": single_line(article.subject_line),
        "preheader": preheader,
        "image": article.image,
        "body_html": Markup(body_html),
        "body_text": body_text,
        "nav": nav.in_timezone(settings.schedule.tz) if nav else None,
        "author": _author_view(article, settings),
        "clinic": settings.clinic,
        "theme": Theme.from_brand(settings.clinic.brand_color),
        "archive_url": archive_url,
        "text_width": TEXT_WIDTH,
        **{name: placeholder(name) for name in PLACEHOLDERS},
    }
    env = template_environment(settings.templates_path)
    mjml_source = render_template(env, HTML_TEMPLATE, context)
    text = render_template(env, TEXT_TEMPLATE, context)
    return RenderedIssue(
        slug=article.slug,
        subject=context["subject"],
        preheader=preheader,
        html=mjml_to_html(mjml_source),
        text=collapse_blank_lines(text),
    )
