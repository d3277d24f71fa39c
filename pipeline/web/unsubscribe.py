"""Leave the list: RFC 8058 one-click unsubscribe, the confirm page and the undo.

``POST /unsubscribe/{token}`` unsubscribes at once (mail providers send
``List-Unsubscribe=One-Click`` without cookies; the signed token is the
proof) and answers 200 without a redirect. A GET only shows a button, so link
scanners never unsubscribe anyone. The "resubscribe" undo does not reactivate
anyone by itself: it sends a fresh confirmation email, because coming back
needs the person's consent like joining does.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from pipeline.errors import NotFoundError, TokenError
from pipeline.store.models import LEFT_STATUSES, SubscriberStatus
from pipeline.store.subscribers import TokenHolder, stamp_left_by_link, token_holder
from pipeline.subscribers import remove_subscriber
from pipeline.web.context import WebContext
from pipeline.web.subscribe import rate_limited, start_confirmation

#: A one-click body is 26 bytes; anything far larger is not one.
MAX_ONE_CLICK_BODY = 64 * 1024


def unsubscribe_routes(ctx: WebContext) -> APIRouter:
    """``/unsubscribe``, ``/unsubscribe/{token}`` and its ``/resubscribe`` undo."""
    router = APIRouter()
    pages = ctx.pages
    sessions = ctx.newsletter.sessions

    def holder(token: str) -> TokenHolder | None:
        """Who the token names; None when they were erased. Raises :class:`TokenError`."""
        # Unsubscribe links never expire: an old newsletter must still let people out.
        return token_holder(sessions, ctx.signer.verify("unsubscribe", token))

    def bad_link(request: Request) -> HTMLResponse:
        return pages.page(
            request, "bad_link.html", status_code=400, private=True, kind="unsubscribe"
        )

    def unsubscribed_page(
        request: Request, token: str, who: TokenHolder | None, *, retry: bool = False
    ) -> HTMLResponse:
        # The undo form is offered only to someone on record who has left.
        can_undo = who is not None and who.status in LEFT_STATUSES
        return pages.page(
            request,
            "unsubscribed.html",
            status_code=400 if retry else 200,
            form=can_undo,
            private=True,
            token=token,
            can_undo=can_undo,
            retry=retry,
        )

    def unsubscribe_now(who: TokenHolder) -> TokenHolder:
        if who.status in LEFT_STATUSES:
            return who
        try:
            remove_subscriber(sessions, who.email)
        except NotFoundError:  # erased meanwhile: nothing left to unsubscribe
            return who
        # No older confirm link brings them back; the time is on the app's clock,
        # which confirmation times are measured on too.
        stamp_left_by_link(sessions, who.id, ctx.clock())
        return TokenHolder(who.id, who.email, SubscriberStatus.UNSUBSCRIBED)

    @router.get("/unsubscribe")
    def unsubscribe_help(request: Request) -> HTMLResponse:
        return pages.page(request, "unsubscribe_help.html")

    @router.get("/unsubscribe/{token}")
    def unsubscribe_form(request: Request, token: str) -> HTMLResponse:
        try:
            who = holder(token)
        except TokenError:
            return bad_link(request)
        if who is None or who.status in LEFT_STATUSES:
            return unsubscribed_page(request, token, who)
        return pages.page(request, "unsubscribe.html", private=True, token=token, email=who.email)

    @router.post("/unsubscribe/{token}")
    async def unsubscribe(request: Request, token: str) -> HTMLResponse:
        # RFC 8058: the POST itself is the request; no cookie, no redirect. The body
        # (List-Unsubscribe=One-Click, urlencoded or multipart) is read but not required:
        # someone who pressed our own button wants out just as much.
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_ONE_CLICK_BODY:
                break

        def work() -> HTMLResponse:
            try:
                who = holder(token)
            except TokenError:
                return bad_link(request)
            if who is not None:
                who = unsubscribe_now(who)
            return unsubscribed_page(request, token, who)

        return await run_in_threadpool(work)

    @router.post("/unsubscribe/{token}/resubscribe")
    def resubscribe(
        request: Request, token: str, csrf_token: Annotated[str, Form()] = ""
    ) -> HTMLResponse:
        if (limited := rate_limited(ctx, request)) is not None:
            return limited
        try:
            who = holder(token)
        except TokenError:
            return bad_link(request)
        if not ctx.csrf.check(request, csrf_token):
            return unsubscribed_page(request, token, who, retry=True)
        if who is None:
            return unsubscribed_page(request, token, who)
        if who.status not in LEFT_STATUSES:
            return pages.page(request, "confirmed.html", private=True)
        # The token is the only proof here: the address is shown masked, as on the
        # unsubscribe page.
        return start_confirmation(ctx, request, who.email, None, source="web", mask=True)

    return router
