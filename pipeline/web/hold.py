"""The heads-up's "Hold this send" page and its preview (see :mod:`pipeline.owner.hold`).

``GET /hold/{token}`` only shows the firing and a button: link scanners and
mail previews open links, and must never hold a send. ``POST /hold/{token}``
with the page's CSRF token holds it. ``GET /hold/{token}/preview`` shows the
issue as it would go out. The token is signed with the folder's secret key.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse

from pipeline.owner.hold import HoldClaim, hold_firing, read_hold_token
from pipeline.render import Personalizer
from pipeline.web.context import WebContext


def hold_routes(ctx: WebContext) -> APIRouter:
    """``/hold/{token}`` (GET shows, POST holds) and ``/hold/{token}/preview``."""
    router = APIRouter()
    newsletter = ctx.newsletter
    pages = ctx.pages

    def page(
        request: Request, token: str, claim: HoldClaim, *, held: bool, retry: bool
    ) -> HTMLResponse:
        at = claim.firing_at.astimezone(ctx.settings.schedule.tz).isoformat()
        late = claim.firing_at <= ctx.clock()
        return pages.page(
            request,
            "hold.html",
            status_code=400 if retry else 200,
            form=True,
            token=token,
            at=at,
            slug=claim.slug,
            late=late,
            held=held,
            retry=retry,
        )

    def bad_link(request: Request) -> HTMLResponse:
        return pages.page(request, "bad_link.html", status_code=400, private=True, kind="hold")

    @router.get("/hold/{token}")
    def hold_form(request: Request, token: str) -> HTMLResponse:
        claim = read_hold_token(newsletter, token)
        if claim is None:
            return bad_link(request)
        return page(request, token, claim, held=False, retry=False)

    @router.post("/hold/{token}")
    def hold(request: Request, token: str, csrf_token: Annotated[str, Form()] = "") -> HTMLResponse:
        claim = read_hold_token(newsletter, token)
        if claim is None:
            return bad_link(request)
        if not ctx.csrf.check(request, csrf_token):
            return page(request, token, claim, held=False, retry=True)
        if claim.firing_at <= ctx.clock():
            return page(request, token, claim, held=False, retry=False)
        hold_firing(newsletter, claim)
        return page(request, token, claim, held=True, retry=False)

    @router.get("/hold/{token}/preview")
    def preview(request: Request, token: str) -> HTMLResponse:
        claim = read_hold_token(newsletter, token)
        if claim is None:
            return bad_link(request)
        issue = newsletter.render(claim.slug)
        recipient = newsletter.sample_recipient("subscriber@example.com")
        html = Personalizer(issue).html(recipient.values())
        return HTMLResponse(html, headers={"Cache-Control": "no-store"})

    return router
