"""What every dashboard route module shares: the web context, the auth, and one way to
answer (a private page with a CSRF token that renews the session's inactivity timer)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse

from pipeline.web.admin.auth import AdminAuth, AdminSession
from pipeline.web.context import WebContext


@dataclass(frozen=True)
class AdminKit:
    """The web context plus the dashboard's auth."""

    ctx: WebContext
    auth: AdminAuth

    def page(
        self,
        request: Request,
        template: str,
        session: AdminSession | None,
        *,
        status_code: int = 200,
        **context: Any,
    ) -> HTMLResponse:
        """A dashboard page: never cached, always with a CSRF token (the logout form)."""
        context = {"section": None, **context}  # which nav link is current, if any
        response = self.ctx.pages.page(
            request,
            f"admin/{template}",
            status_code=status_code,
            form=True,
            private=True,
            user=session.user if session else None,
            **context,
        )
        if session is not None:
            self.auth.start(response, session.user)
        return response

    def redirect(self, path: str, session: AdminSession | None = None) -> RedirectResponse:
        """A 303 to another dashboard page (after a post), renewing the session."""
        response = RedirectResponse(path, status_code=303, headers={"Cache-Control": "no-store"})
        if session is not None:
            self.auth.start(response, session.user)
        return response

    def csrf_refused(self, request: Request, session: AdminSession | None) -> HTMLResponse:
        """The answer to a post whose CSRF token is missing, stale or not this browser's."""
        return self.page(
            request,
            "message.html",
            session,
            status_code=403,
            page_title="That form had expired",
            message="Nothing was changed. Go back, reload the page and try again.",
            link="/admin",
            link_text="Back to the dashboard",
        )
