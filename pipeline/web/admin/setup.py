"""``/admin/setup/{token}``: the first-run link ``make run`` prints while no account exists.

The link is signed and expires after an hour (:class:`pipeline.accounts.SetupLinks`).
It creates the first owner and signs them in; after that it, and every other
setup link, only says the dashboard is set up: its nonce is recorded with the
account in one transaction, and no link creates an owner once any account exists.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from pipeline.accounts import (
    MIN_PASSWORD,
    AccountError,
    SetupLinks,
    account_email,
    hash_password,
)
from pipeline.errors import TokenError
from pipeline.store.users import count_users, create_first_owner, setup_link_used
from pipeline.web.admin.kit import AdminKit

FormField = Annotated[str, Form()]


def setup_routes(kit: AdminKit, links: SetupLinks) -> APIRouter:
    """The setup page and its form."""
    router = APIRouter()
    sessions = kit.ctx.newsletter.sessions

    def refused(request: Request, nonce: str | None, status_code: int = 400) -> HTMLResponse | None:
        """The page for a link that cannot create an account, else None."""
        if nonce is None:
            return kit.page(
                request,
                "message.html",
                None,
                status_code=status_code,
                page_title="This setup link isn't valid",
                message="It may have expired (a link works for an hour) or been copied only "
                "in part. Start `make run` (or `newsletter demo`) again for a new link.",
                link="/admin/login",
                link_text="Log in instead",
            )
        # Also the answer to the loser of two posts at once (a double click, two tabs):
        # the store let only one of them create the owner.
        if setup_link_used(sessions, nonce):
            return used(request, "This setup link was already used")
        if count_users(sessions) > 0:
            return used(request, "The dashboard is set up")
        return None

    def used(request: Request, title: str) -> HTMLResponse:
        return kit.page(
            request,
            "message.html",
            None,
            status_code=410,
            page_title=title,
            message="An account exists already, so this link creates no other. Log in "
            "with it, or ask the owner to add you with `newsletter users add`.",
            link="/admin/login",
            link_text="Log in",
        )

    def nonce_of(token: str) -> str | None:
        try:
            return links.verify(token)
        except TokenError:
            return None

    def form(
        request: Request,
        token: str,
        status_code: int = 200,
        *,
        error: str | None = None,
        error_field: str | None = None,
        email: str = "",
    ) -> HTMLResponse:
        return kit.page(
            request,
            "setup.html",
            None,
            status_code=status_code,
            page_title="Set up the dashboard",
            token=token,
            error=error,
            error_field=error_field,
            email=email,
            min_password=MIN_PASSWORD,
        )

    @router.get("/admin/setup/{token}")
    def setup_form(request: Request, token: str) -> Response:
        nonce = nonce_of(token)
        return refused(request, nonce) or form(request, token)

    @router.post("/admin/setup/{token}")
    def setup(
        request: Request,
        token: str,
        email: FormField = "",
        password: FormField = "",
        password2: FormField = "",
        csrf_token: FormField = "",
    ) -> Response:
        nonce = nonce_of(token)
        if (answer := refused(request, nonce)) is not None or nonce is None:
            return answer or form(request, token, 400)
        typed = email.strip()[:320]
        if not kit.ctx.csrf.check(request, csrf_token):
            return form(
                request, token, 403, error="This form had expired. Please try again.", email=typed
            )
        try:
            address = account_email(typed)
        except AccountError:
            return form(
                request,
                token,
                400,
                error="Please enter a valid email address, like name@example.com.",
                error_field="email",
                email=typed,
            )
        if password != password2:
            return form(
                request,
                token,
                400,
                error="The two passwords differ.",
                error_field="password",
                email=typed,
            )
        try:
            password_hash = hash_password(password)
        except AccountError as exc:
            return form(request, token, 400, error=f"{exc}.", error_field="password", email=typed)
        user = create_first_owner(sessions, nonce, address, password_hash, kit.ctx.clock())
        if user is None:  # used a moment ago, by another post of this link or another link
            return refused(request, nonce) or form(request, token, 410)
        response = kit.redirect("/admin")
        kit.auth.start(response, user)
        return response

    return router
