"""Server-rendered pages: one Jinja2 environment, the clinic's brand, CSRF fields.

Every value reaches HTML through Jinja2's autoescaping; nothing a visitor
typed is ever marked safe.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from pipeline.config import Settings
from pipeline.render import Theme
from pipeline.web.security import CsrfGuard

TEMPLATES_DIR = Path(__file__).parent / "templates"

#: For pages reached through a personal link: not cached, not indexed.
PRIVATE_HEADERS = {"Cache-Control": "no-store", "X-Robots-Tag": "noindex, nofollow"}


def mask_email(address: str) -> str:
    """``s***@example.com``: enough for a person to recognise their own address."""
    local, at, domain = address.partition("@")
    return f"{local[:1]}***{at}{domain}" if at else "***"


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
    )
    env.filters["mask_email"] = mask_email
    return env


class Pages:
    """Renders the web app's templates with the clinic's brand."""

    def __init__(self, settings: Settings, csrf: CsrfGuard) -> None:
        self._env = _environment()
        self._csrf = csrf
        self._globals: dict[str, Any] = {
            "clinic": settings.clinic,
            "theme": Theme.from_brand(settings.clinic.brand_color),
            "base_url": settings.web.base_url,
            "csrf_field": CsrfGuard.FIELD,
        }

    def render_string(self, template: str, **context: Any) -> str:
        """A template as text (for fragments spliced into archived emails)."""
        return self._env.get_template(template).render(**self._globals, **context)

    def page(
        self,
        request: Request,
        template: str,
        status_code: int = 200,
        *,
        form: bool = False,
        private: bool = False,
        headers: dict[str, str] | None = None,
        **context: Any,
    ) -> HTMLResponse:
        """A full page. ``form`` adds a CSRF token (and its cookie when the browser lacks one)."""
        ticket = self._csrf.ticket(request) if form else None
        html = self.render_string(
            template, csrf_token=ticket.field_value if ticket else "", **context
        )
        all_headers = {**(PRIVATE_HEADERS if private or form else {}), **(headers or {})}
        response = HTMLResponse(html, status_code=status_code, headers=all_headers)
        if ticket is not None and ticket.new_cookie is not None:
            self._csrf.set_cookie(response, ticket.new_cookie)
        return response
