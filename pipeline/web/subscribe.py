"""Join the list: the sign-up form, the confirmation email and the confirm link.

Double opt-in: the form only sends a confirmation email (at most one per
address per hour, and a rate limit per client address); the address becomes
active when the person presses "Confirm" on the page the emailed link opens.
A GET of that link changes nothing, so mail scanners that follow links cannot
subscribe anyone. The answer to the form never says whether an address was
already on the list.
"""

from __future__ import annotations

import logging
import math
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse

from ..errors import InvalidAddressError, TokenError, TransportError
from ..subscribers import normalize_email
from ..tokens import TokenClaims
from .confirm_email import send_confirm_email
from .context import WebContext
from .security import client_ip
from .signup import (
    MAX_FIRST_NAME,
    ConfirmOutcome,
    clean_first_name,
    confirm_subscription,
    release_confirmation,
    request_confirmation,
)

_log = logging.getLogger(__name__)

#: Longest address the database holds.
MAX_EMAIL = 320

FormField = Annotated[str, Form()]


def rate_limited(ctx: WebContext, request: Request) -> HTMLResponse | None:
    """A 429 page when this client has posted too many forms lately, else None."""
    wait = ctx.limiter.hit(client_ip(request))
    if wait <= 0:
        return None
    retry_after = max(1, math.ceil(wait))
    return ctx.pages.page(
        request,
        "error.html",
        status_code=429,
        headers={"Retry-After": str(retry_after)},
        title="Too many requests",
        message="That's a lot of sign-ups from one place. Please wait a few minutes and try again.",
    )


def start_confirmation(
    ctx: WebContext, request: Request, email: str, first_name: str | None, *, source: str
) -> HTMLResponse:
    """Send a confirmation email if one is due, and answer "check your inbox" either way."""
    reserved = request_confirmation(
        ctx.newsletter.sessions, email, first_name, ctx.clock(), source=source
    )
    if reserved is not None:
        token = ctx.signer.issue("confirm", reserved.subscriber_id, reserved.email)
        try:
            send_confirm_email(
                ctx.newsletter,
                to=reserved.email,
                subscriber_id=reserved.subscriber_id,
                confirm_url=ctx.url(f"/confirm/{token}"),
                unsubscribe_url=ctx.unsubscribe_url(reserved.subscriber_id, reserved.email),
            )
        except TransportError as error:
            release_confirmation(ctx.newsletter.sessions, reserved)
            _log.warning("%s", error)
            return ctx.pages.page(
                request,
                "error.html",
                status_code=503,
                title="We couldn't send the email",
                message="Our mail service didn't accept the confirmation email just now. "
                "Please try again in a little while.",
            )
    return ctx.pages.page(request, "check_inbox.html", private=True, email=email)


def subscribe_routes(ctx: WebContext) -> APIRouter:
    """``/subscribe`` and ``/confirm/{token}``."""
    router = APIRouter()
    pages = ctx.pages
    max_age = ctx.settings.web.confirm_max_age_hours * 3600

    def form_page(
        request: Request,
        status_code: int = 200,
        *,
        error: str | None = None,
        error_field: str | None = None,
        **values: str,
    ) -> HTMLResponse:
        return pages.page(
            request,
            "subscribe.html",
            status_code=status_code,
            form=True,
            error=error,
            error_field=error_field,
            email=values.get("email", ""),
            first_name=values.get("first_name", ""),
            max_first_name=MAX_FIRST_NAME,
        )

    @router.get("/subscribe")
    def subscribe_form(request: Request) -> HTMLResponse:
        return form_page(request)

    @router.post("/subscribe")
    def subscribe(
        request: Request,
        email: FormField = "",
        first_name: FormField = "",
        csrf_token: FormField = "",
        website: FormField = "",
    ) -> HTMLResponse:
        if (limited := rate_limited(ctx, request)) is not None:
            return limited
        typed = {"email": email.strip()[:MAX_EMAIL], "first_name": first_name[:MAX_FIRST_NAME]}
        if not ctx.csrf.check(request, csrf_token):
            return form_page(
                request,
                400,
                error="This form had expired. Please check your details and press Subscribe again.",
                **typed,
            )
        if website:
            # The honeypot field is hidden from people; only bots fill it in. Answer as if
            # all went well, so they learn nothing.
            return pages.page(request, "check_inbox.html", private=True, email=typed["email"])
        if len(first_name.strip()) > MAX_FIRST_NAME:
            return form_page(
                request,
                400,
                error=f"Please keep the first name to {MAX_FIRST_NAME} characters or fewer.",
                error_field="first_name",
                **typed,
            )
        try:
            if len(email.strip()) > MAX_EMAIL:
                raise InvalidAddressError("too long")
            address = normalize_email(email)
        except InvalidAddressError:
            return form_page(
                request,
                400,
                error="Please enter a valid email address, like name@example.com.",
                error_field="email",
                **typed,
            )
        return start_confirmation(ctx, request, address, clean_first_name(first_name), source="web")

    def verify(token: str) -> TokenClaims | None:
        try:
            return ctx.signer.verify("confirm", token, max_age=max_age)
        except TokenError:
            return None

    def bad_confirm_link(request: Request) -> HTMLResponse:
        return pages.page(request, "bad_link.html", status_code=400, private=True, kind="confirm")

    @router.get("/confirm/{token}")
    def confirm_form(request: Request, token: str) -> HTMLResponse:
        if verify(token) is None:
            return bad_confirm_link(request)
        return pages.page(request, "confirm.html", form=True, token=token)

    @router.post("/confirm/{token}")
    def confirm(request: Request, token: str, csrf_token: FormField = "") -> HTMLResponse:
        claims = verify(token)
        if claims is None:
            return bad_confirm_link(request)
        if not ctx.csrf.check(request, csrf_token):
            return pages.page(request, "confirm.html", form=True, token=token, retry=True)
        outcome = confirm_subscription(
            ctx.newsletter.sessions, claims, ctx.clock(), client_ip(request)
        )
        if outcome is ConfirmOutcome.STALE:
            return bad_confirm_link(request)
        return pages.page(request, "confirmed.html", private=True)

    return router
