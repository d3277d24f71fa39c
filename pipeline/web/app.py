"""The subscriber-facing web app: join, confirm, leave, read online, hear from SendGrid.

``create_app`` wires the route modules together:

* :mod:`.archive`: ``/archive``, ``/archive/{slug}``, ``/archive/feed.xml``
* :mod:`.subscribe`: ``/subscribe`` (double opt-in) and ``/confirm/{token}``
* :mod:`.unsubscribe`: ``/unsubscribe/{token}`` (RFC 8058 one-click) and its undo
* :mod:`.webhooks`: ``/webhooks/sendgrid`` (signed Event Webhook)
* :mod:`.admin`: ``/admin``, the dashboard for owners and writers (behind a login)

Every response carries the security headers; errors are friendly pages that
show no internals. No page loads a script, a font or a tracker from anywhere.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from pipeline.newsletter import Newsletter
from pipeline.tokens import TokenSigner
from pipeline.web.admin import install_admin
from pipeline.web.archive import archive_routes
from pipeline.web.confirm_sender import ConfirmationSender
from pipeline.web.context import WebContext
from pipeline.web.hold import hold_routes
from pipeline.web.pages import Pages
from pipeline.web.security import (
    CsrfGuard,
    RateLimiter,
    SecurityHeadersMiddleware,
    security_headers,
)
from pipeline.web.server import HeadAsGetMiddleware
from pipeline.web.subscribe import subscribe_routes
from pipeline.web.unsubscribe import unsubscribe_routes
from pipeline.web.webhooks import webhook_routes

_log = logging.getLogger(__name__)

#: How long a form stays valid after its page was shown.
FORM_MAX_AGE = 12 * 3600


def create_app(newsletter: Newsletter) -> FastAPI:
    """The ASGI app for one newsletter folder (same settings, database and clock).

    While a server runs it (its lifespan), a thread sends the queued
    confirmation emails; ``app.state.confirmations`` is that sender.
    """
    settings = newsletter.settings
    secret = settings.secret_key.get_secret_value()
    csrf = CsrfGuard(secret, newsletter.clock, base_url=settings.web.base_url, max_age=FORM_MAX_AGE)
    signer = TokenSigner(secret, clock=newsletter.clock)
    sender = ConfirmationSender(newsletter, signer)
    ctx = WebContext(
        newsletter=newsletter,
        pages=Pages(settings, csrf),
        csrf=csrf,
        limiter=RateLimiter(
            settings.web.subscribe_burst, settings.web.subscribe_per_hour, newsletter.clock
        ),
        signer=signer,
        confirmations=sender,
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        sender.start()
        try:
            yield
        finally:
            sender.stop()
            # The dashboard's sends finish their batch in hand; the rest stays pending.
            _app.state.background_sends.stop()

    app = FastAPI(
        title=settings.clinic.name,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        lifespan=lifespan,
    )
    app.state.confirmations = sender
    app.add_middleware(SecurityHeadersMiddleware, headers=security_headers(settings.web.base_url))
    app.add_middleware(HeadAsGetMiddleware)
    for router in (
        archive_routes(ctx),
        subscribe_routes(ctx),
        unsubscribe_routes(ctx),
        webhook_routes(ctx),
        hold_routes(ctx),
    ):
        app.include_router(router)
    install_admin(app, ctx)  # /admin: the dashboard, behind a login
    _error_pages(app, ctx)
    return app


def _error_pages(app: FastAPI, ctx: WebContext) -> None:
    """Friendly HTML for 404/405/400/500 instead of JSON or a traceback."""

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404:
            return ctx.pages.page(request, "not_found.html", status_code=404)
        return ctx.pages.page(
            request,
            "error.html",
            status_code=exc.status_code,
            headers=dict(exc.headers or {}),
            title="That didn't work",
            message="This page can't do that. Try the archive instead.",
        )

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> HTMLResponse:
        return ctx.pages.page(
            request,
            "error.html",
            status_code=400,
            title="That didn't work",
            message="Something in that request wasn't what we expected.",
        )

    @app.exception_handler(Exception)
    async def server_error(request: Request, exc: Exception) -> HTMLResponse:
        # Logged, never shown: a page must not reveal internals. The route's pattern is
        # logged, not the path, which can hold someone's personal token.
        route = getattr(request.scope.get("route"), "path", "?")
        _log.exception("error serving %s %s", request.method, route)
        return ctx.pages.page(
            request,
            "error.html",
            status_code=500,
            title="Something went wrong",
            message="Sorry, something went wrong on our side. Please try again later.",
        )
