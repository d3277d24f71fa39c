"""Join the list: the sign-up form, the confirmation email and the confirm link.

Double opt-in: the form only asks for a confirmation email (at most one per
address per hour, and a rate limit per client address); the address becomes
active when the person presses "Confirm" on the page the emailed link opens.
A GET of that link changes nothing, so mail scanners that follow links cannot
subscribe anyone. The answer to the form never says whether an address was
already on the list: the form queues every request the same way (one insert)
and the background sender (:mod:`.confirm_sender`) decides and sends, so the
status, the page and the time taken are the same for every address, and a
mail service that is down is retried, never shown.
"""

from __future__ import annotations

import math
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse

from pipeline.errors import InvalidAddressError, PipelineError, TokenError
from pipeline.sending.welcome import prepare_welcome
from pipeline.store import confirmations
from pipeline.store.signups import ConfirmOutcome, confirm_subscription
from pipeline.subscribers import normalize_email
from pipeline.subscribers.signup import MAX_FIRST_NAME, clean_first_name
from pipeline.tokens import TokenClaims
from pipeline.web.context import WebContext
from pipeline.web.pages import mask_email
from pipeline.web.security import client_ip

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
    ctx: WebContext,
    request: Request,
    email: str,
    first_name: str | None,
    *,
    source: str,
    mask: bool = False,
) -> HTMLResponse:
    """Queue the request for the background sender, and answer "check your inbox".

    ``mask``: show the address as ``s***@example.com``, for a request whose only
    proof is a link's token (the person did not type the address).

    The same work for every address (the address is not even looked up here):
    whether an email is due, and sending it, happen in the background.
    """
    confirmations.enqueue(ctx.newsletter.sessions, email, first_name, ctx.clock(), source=source)
    ctx.confirmations.wake()
    shown = mask_email(email) if mask else email
    return ctx.pages.page(request, "check_inbox.html", private=True, email=shown)


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

    def welcome_id() -> int | None:
        # A broken welcome template must not stop anyone confirming: they are
        # then simply not welcomed (the scheduler logs the template error).
        try:
            return prepare_welcome(ctx.newsletter)
        except PipelineError:
            return None

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
            ctx.newsletter.sessions,
            claims,
            ctx.clock(),
            client_ip(request),
            secret_key=ctx.settings.secret_key.get_secret_value(),
            # Enrolled here, sent by the scheduler's welcome pass (never from a request).
            welcome=welcome_id(),
        )
        if outcome is ConfirmOutcome.STALE:
            return bad_confirm_link(request)
        return pages.page(request, "confirmed.html", private=True)

    return router
