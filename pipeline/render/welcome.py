"""The welcome email: ``templates/welcome.mjml`` and ``welcome.txt``, rendered once.

Only a folder's *own* templates turn it on (the package's design is not a
fallback here: a folder that never wrote a welcome email sends none). It is
rendered like an issue, placeholders left for each recipient, and names the
series a new subscriber is about to receive.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from pipeline.config import Settings
from pipeline.content.articles import Article
from pipeline.content.reserved import WELCOME_SLUG
from pipeline.content.series import series_title
from pipeline.render.issue import RenderedIssue
from pipeline.render.personalize import PLACEHOLDERS, placeholder
from pipeline.render.templates import (
    mjml_to_html,
    render_template,
    template_environment,
)
from pipeline.render.text import TEXT_WIDTH, collapse_blank_lines, single_line
from pipeline.render.theme import Theme

WELCOME_HTML: Final = "welcome.mjml"
WELCOME_TEXT: Final = "welcome.txt"


@dataclass(frozen=True)
class WelcomeSeries:
    """A series named in the welcome email: its title and how many parts it has so far."""

    slug: str
    title: str
    parts: int


def has_welcome(templates_path: Path) -> bool:
    """Whether the folder's own templates include a welcome email (both files)."""
    return (templates_path / WELCOME_HTML).is_file() and (templates_path / WELCOME_TEXT).is_file()


def catch_up_on(settings: Settings, slug: str) -> bool:
    """Whether ``[series.SLUG] catch_up`` is on (true unless the settings say otherwise)."""
    per_series: Any = getattr(settings, "series", None) or {}
    options = per_series.get(slug) if isinstance(per_series, dict) else None
    return bool(getattr(options, "catch_up", True)) if options is not None else True


def welcome_series(settings: Settings, articles: Iterable[Article]) -> list[WelcomeSeries]:
    """The series with catch-up on, by title: what a new subscriber will be sent from part 1."""
    parts: dict[str, int] = {}
    for article in articles:
        if article.series is not None and article.status != "draft":
            parts[article.series] = parts.get(article.series, 0) + 1
    found = [
        WelcomeSeries(slug=slug, title=series_title(slug), parts=count)
        for slug, count in parts.items()
        if catch_up_on(settings, slug)
    ]
    return sorted(found, key=lambda s: s.title)


def render_welcome(
    settings: Settings, series: list[WelcomeSeries], *, archive_url: str
) -> RenderedIssue:
    """The welcome email, the same for everyone until personalized.

    Raises :class:`TemplateError` naming the file (and line) when a template is broken.
    """
    clinic = settings.clinic
    subject = single_line(f"Welcome to {clinic.name}")
    preheader = single_line(
        f"Thanks for subscribing to {clinic.name}. Here is what you will receive."
    )
    context: dict[str, Any] = {
        "title": subject,
        "subject": subject,
        "preheader": preheader,
        "series": series,
        "clinic": clinic,
        "theme": Theme.from_brand(clinic.brand_color),
        "archive_url": archive_url,
        "text_width": TEXT_WIDTH,
        **{name: placeholder(name) for name in PLACEHOLDERS},
    }
    env = template_environment(settings.templates_path)
    mjml_source = render_template(env, WELCOME_HTML, context)
    text = render_template(env, WELCOME_TEXT, context)
    return RenderedIssue(
        slug=WELCOME_SLUG,
        subject=subject,
        preheader=preheader,
        html=mjml_to_html(mjml_source),
        text=collapse_blank_lines(text),
    )
