"""The subscriber-facing web app: the archive and one-click unsubscribe.

Every link an email carries resolves here: ``/archive/{slug}`` shows a sent
issue (personal parts replaced), a "coming soon" page for a queued one, and
404 for drafts; ``/unsubscribe/{token}`` honours RFC 8058 one-click POSTs at
once and shows a confirm button to a GET, so link scanners cannot unsubscribe
anyone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from ..campaigns import stored_issue
from ..errors import NotFoundError, TokenError
from ..render import Personalizer, RenderedIssue
from ..service import Newsletter
from ..store.models import Subscriber, SubscriberStatus
from ..subscribers import remove_subscriber

_PAGES = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(default=True),
)

_SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; img-src https: data:; style-src 'unsafe-inline'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


def create_app(newsletter: Newsletter) -> FastAPI:
    """The ASGI app for one newsletter folder."""
    app = FastAPI(title=newsletter.settings.clinic.name, docs_url=None, redoc_url=None)
    settings = newsletter.settings

    def page(template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        html = _PAGES.get_template(template).render(clinic=settings.clinic, **context)
        return HTMLResponse(html, status_code=status_code, headers=_SECURITY_HEADERS)

    def public_html(issue: RenderedIssue) -> str:
        # The archive copy: no one's name, and no one's unsubscribe token.
        return Personalizer(issue).html(
            {
                "first_name": settings.email.first_name_fallback,
                "unsubscribe_url": f"{settings.web.base_url}/unsubscribe",
            }
        )

    @app.get("/", include_in_schema=False)
    def home() -> HTMLResponse:
        return archive_index()

    @app.get("/archive")
    def archive_index() -> HTMLResponse:
        campaigns = newsletter.ledger.campaigns()
        return page("archive.html", campaigns=campaigns)

    @app.get("/archive/{slug}")
    def archive_issue(slug: str) -> HTMLResponse:
        campaign = newsletter.ledger.get_campaign(slug)
        if campaign is not None:
            return HTMLResponse(public_html(stored_issue(campaign)), headers=_SECURITY_HEADERS)
        try:
            article = newsletter.article(slug)
        except NotFoundError:
            article = None
        if article is None or article.status == "draft":
            return page("not_found.html", status_code=404)
        planned = {e.slug: e.planned_at for e in newsletter.queue()}.get(slug)
        return page("coming_soon.html", article=article, planned_at=planned)

    @app.get("/unsubscribe")
    def unsubscribe_help() -> HTMLResponse:
        return page("unsubscribe_help.html")

    def subscriber_for(token: str) -> Subscriber | None:
        claims = newsletter.signer.verify("unsubscribe", token)
        with newsletter.sessions() as session:
            subscriber = session.get(Subscriber, claims.subscriber_id)
            if subscriber is None or not claims.matches(subscriber.email):
                return None
            return subscriber

    @app.get("/unsubscribe/{token}")
    def unsubscribe_form(token: str) -> HTMLResponse:
        try:
            subscriber = subscriber_for(token)
        except TokenError:
            return page("bad_link.html", status_code=400)
        if subscriber is None or subscriber.status != SubscriberStatus.ACTIVE:
            return page("unsubscribed.html")
        return page("unsubscribe.html", token=token)

    @app.post("/unsubscribe/{token}")
    async def unsubscribe(token: str, request: Request) -> Response:
        # RFC 8058: the POST itself is the request; no cookie, no redirect.
        await request.body()
        try:
            subscriber = subscriber_for(token)
        except TokenError:
            return page("bad_link.html", status_code=400)
        if subscriber is not None and subscriber.status == SubscriberStatus.ACTIVE:
            remove_subscriber(newsletter.sessions, subscriber.email)
        return page("unsubscribed.html")

    return app
