"""``/admin/login`` and ``/admin/logout``.

Every attempt is counted against the client address and against the account
named, before the password is checked (a refused attempt costs no hashing).
A wrong address and a wrong password get the same answer, and take the same
time (:func:`pipeline.accounts.verify_password` hashes against a dummy).
"""

from __future__ import annotations

import contextlib
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from pipeline.accounts import AccountError, hash_password, needs_rehash, verify_password
from pipeline.store.users import end_sessions, find_user, set_password_hash
from pipeline.web.admin.auth import safe_next
from pipeline.web.admin.kit import AdminKit

FormField = Annotated[str, Form()]

#: Longest address the database holds.
_MAX_EMAIL = 320


def login_routes(kit: AdminKit) -> APIRouter:
    """Log in and out."""
    router = APIRouter()
    auth = kit.auth
    sessions = kit.ctx.newsletter.sessions

    def form(
        request: Request,
        status_code: int = 200,
        *,
        error: str | None = None,
        email: str = "",
        next_path: str = "/admin",
        headers: dict[str, str] | None = None,
    ) -> HTMLResponse:
        ended = request.query_params.get("ended") == "1"
        notice = (
            f"You were logged out after {auth.max_age // 60} minutes without activity."
            if ended and error is None
            else None
        )
        response = kit.page(
            request,
            "login.html",
            None,
            status_code=status_code,
            page_title="Log in",
            error=error,
            notice=notice,
            email=email,
            next=next_path,
        )
        response.headers.update(headers or {})
        return response

    @router.get("/admin/login")
    def login_form(request: Request, next: str = "/admin") -> Response:
        if auth.session_of(request) is not None:
            return kit.redirect(safe_next(next))
        return form(request, next_path=safe_next(next))

    @router.post("/admin/login")
    def login(
        request: Request,
        email: FormField = "",
        password: FormField = "",
        csrf_token: FormField = "",
        next: FormField = "/admin",
    ) -> Response:
        typed = email.strip()[:_MAX_EMAIL]
        target = safe_next(next)
        wait = auth.login_wait(request, typed)
        if wait:
            return form(
                request,
                429,
                error="Too many login attempts. Please wait a few minutes and try again.",
                email=typed,
                next_path=target,
                headers={"Retry-After": str(wait)},
            )
        if not kit.ctx.csrf.check(request, csrf_token):
            return form(
                request,
                400,
                error="This form had expired. Please enter your password again.",
                email=typed,
                next_path=target,
            )
        user = find_user(sessions, typed) if typed else None
        if not verify_password(user.password_hash if user else None, password) or user is None:
            return form(
                request,
                401,
                error="That email address and password don't match an account.",
                email=typed,
                next_path=target,
            )
        if needs_rehash(user.password_hash):
            # A password set under an older length rule is kept as it is.
            with contextlib.suppress(AccountError):
                set_password_hash(sessions, user.id, hash_password(password))
        response = kit.redirect(target)
        auth.start(response, user)
        return response

    @router.post("/admin/logout")
    def logout(request: Request, csrf_token: FormField = "") -> Response:
        session = auth.require(request)
        if not kit.ctx.csrf.check(request, csrf_token):
            return kit.csrf_refused(request, session)
        end_sessions(sessions, session.user.id)
        response = kit.redirect("/admin/login")
        auth.clear(response)
        return response

    return router
