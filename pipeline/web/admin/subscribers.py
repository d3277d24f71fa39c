"""``/admin/subscribers`` (owners only): the list's counts by state.

The start of the subscribers section; search, one person's page, CSV upload,
export, remove and forget are still the CLI's (``newsletter subscribers``).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from pipeline.accounts import Role
from pipeline.store.subscribers import count_by_status
from pipeline.web.admin.kit import AdminKit


def subscriber_routes(kit: AdminKit) -> APIRouter:
    """The subscribers page."""
    router = APIRouter()

    @router.get("/admin/subscribers")
    def subscribers(request: Request) -> HTMLResponse:
        session = kit.auth.require(request, Role.OWNER)
        counts = count_by_status(kit.ctx.newsletter.sessions)
        return kit.page(
            request,
            "subscribers.html",
            session,
            page_title="Subscribers",
            section="subscribers",
            subscriber_counts=[(status.value, n) for status, n in counts.items()],
        )

    return router
