"""Preview and test a saved article: ``/admin/articles/SLUG/preview`` shows it as the
email (frames at 375 and 1280 px, light and dark, and the text part) and
``SLUG/test-send`` sends one copy to the signed-in person through the configured
transport (:meth:`pipeline.newsletter.Newsletter.test_send`), outside the ledger.
Writers and owners alike: a test goes only to the person asking.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from pipeline.errors import PipelineError
from pipeline.web.admin.auth import AdminSession
from pipeline.web.admin.editor import email_preview
from pipeline.web.admin.kit import AdminKit

FormField = Annotated[str, Form()]


def saved_preview_routes(kit: AdminKit) -> APIRouter:
    """The saved article's preview page and its "send a test to me" button."""
    router = APIRouter()
    newsletter = kit.ctx.newsletter

    def saved_preview(
        request: Request, session: AdminSession, slug: str, *, status_code: int = 200, **extra: Any
    ) -> Response:
        try:
            article = newsletter.article(slug)
            issue = newsletter.render(slug)
        except PipelineError as exc:
            return kit.ctx.pages.page(
                request,
                "error.html",
                status_code=404,
                private=True,
                title="This article cannot be previewed",
                message=str(exc),
            )
        extra = {"sent_to": None, "sent_via": None, "sent_error": None, **extra}
        return kit.page(
            request,
            "article_preview.html",
            session,
            status_code=status_code,
            page_title=f"Preview: {article.title}",
            section="queue",
            article=article,
            preview=email_preview(newsletter, issue),
            **extra,
        )

    @router.get("/admin/articles/{slug}/preview")
    def preview_saved(request: Request, slug: str) -> Response:
        session = kit.auth.require(request)
        return saved_preview(request, session, slug)

    @router.post("/admin/articles/{slug}/test-send")
    def test_send(request: Request, slug: str, csrf_token: FormField = "") -> Response:
        session = kit.auth.require(request)
        if not kit.ctx.csrf.check(request, csrf_token):
            return kit.csrf_refused(request, session)
        to = session.user.email
        try:
            newsletter.test_send(slug, to)
        except PipelineError as exc:
            return saved_preview(request, session, slug, status_code=502, sent_error=str(exc))
        return saved_preview(request, session, slug, sent_to=to, sent_via=_transport_name(kit))

    return router


def _transport_name(kit: AdminKit) -> str:
    """Where a test copy went, in words: the outbox folder, the SMTP server or SendGrid."""
    settings = kit.ctx.settings
    transport = settings.sending.transport
    if transport == "outbox":
        return f"the outbox folder ({settings.outbox_path})"
    if transport == "smtp":
        return f"the SMTP server {settings.smtp.host}"
    return "SendGrid" if transport == "sendgrid" else str(transport)
