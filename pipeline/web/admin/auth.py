"""Who is signed in to the dashboard, and what they may do.

The session is a cookie holding ``[user id, session version]`` signed with the
folder's secret key and a timestamp (itsdangerous). Nothing is stored per
session: the timestamp is renewed on every dashboard response, so a session
ends after ``[web] admin_session_minutes`` without a request; logging out bumps
the account's ``session_version``, so every cookie issued before (a copy too)
stops working; removing the account ends them as well. The cookie is HttpOnly,
``SameSite=Lax`` (a link from an email into /admin keeps you signed in; a
cross-site post does not carry it) and ``Secure`` when ``[web] base_url`` is
https, where it is also ``__Host-`` prefixed.

Routes call :meth:`AdminAuth.require`; an anonymous request raises
:class:`LoginRequired` (a redirect to the login page) and a writer asking for
an owner's page raises :class:`OwnerOnly` (403); :func:`install_handlers`
turns both into responses.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer

from pipeline.accounts import Role
from pipeline.store.users import UserRecord, get_user
from pipeline.tokens import clocked_signer
from pipeline.web.context import WebContext
from pipeline.web.security import RateLimiter, client_ip

LOGIN_PATH = "/admin/login"

#: Login attempts per client address: a burst, then a steady trickle per hour.
LOGIN_BURST_PER_ADDRESS = 10
LOGIN_PER_HOUR_PER_ADDRESS = 30
#: Login attempts per account, whoever makes them (guessing one owner's password
#: from many addresses): smaller, since a person rarely mistypes five times.
LOGIN_BURST_PER_ACCOUNT = 5
LOGIN_PER_HOUR_PER_ACCOUNT = 10


class LoginRequired(Exception):
    """No valid session: answered with a redirect to the login page."""

    def __init__(self, *, expired: bool) -> None:
        super().__init__("login required")
        self.expired = expired


class OwnerOnly(Exception):
    """A writer asked for something only an owner may do: answered with 403."""


@dataclass(frozen=True)
class AdminSession:
    """The account behind a request."""

    user: UserRecord

    @property
    def is_owner(self) -> bool:
        """Whether this account may send, schedule, pause and see subscribers."""
        return self.user.role == Role.OWNER


class AdminAuth:
    """Session cookies and login limits for one app."""

    def __init__(self, ctx: WebContext) -> None:
        self._ctx = ctx
        settings = ctx.settings
        self.secure = settings.web.base_url.startswith("https://")
        self.cookie_name = "__Host-nl_admin" if self.secure else "nl_admin"
        self.max_age = settings.web.admin_session_minutes * 60
        self._serializer = URLSafeTimedSerializer(
            settings.secret_key.get_secret_value(),
            salt="newsletter-pipeline/admin-session",
            signer=clocked_signer(ctx.clock),
        )
        self._per_address = RateLimiter(
            LOGIN_BURST_PER_ADDRESS, LOGIN_PER_HOUR_PER_ADDRESS, ctx.clock
        )
        self._per_account = RateLimiter(
            LOGIN_BURST_PER_ACCOUNT, LOGIN_PER_HOUR_PER_ACCOUNT, ctx.clock
        )

    # -- sessions ---------------------------------------------------------------------

    def session_of(self, request: Request) -> AdminSession | None:
        """The signed-in account, or None (no cookie, tampered, expired, logged out, removed)."""
        cookie = request.cookies.get(self.cookie_name)
        if not cookie:
            return None
        try:
            payload = self._serializer.loads(cookie, max_age=self.max_age)
        except BadSignature:  # includes SignatureExpired
            return None
        if (
            not isinstance(payload, list)
            or len(payload) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in payload)
        ):
            return None
        user = get_user(self._ctx.newsletter.sessions, payload[0])
        if user is None or user.session_version != payload[1]:
            return None
        return AdminSession(user)

    def require(self, request: Request, role: Role = Role.WRITER) -> AdminSession:
        """The session, or :class:`LoginRequired` / :class:`OwnerOnly`."""
        session = self.session_of(request)
        if session is None:
            raise LoginRequired(expired=self.cookie_name in request.cookies)
        if role is Role.OWNER and not session.is_owner:
            raise OwnerOnly
        return session

    def start(self, response: Response, user: UserRecord) -> None:
        """Sign ``user`` in on this response (also used to renew the inactivity timer)."""
        token = self._serializer.dumps([user.id, user.session_version])
        response.set_cookie(
            self.cookie_name,
            str(token),
            max_age=self.max_age,
            httponly=True,
            samesite="lax",
            secure=self.secure,
            path="/",
        )

    def clear(self, response: Response) -> None:
        """Remove the session cookie from the browser."""
        response.delete_cookie(
            self.cookie_name, path="/", httponly=True, samesite="lax", secure=self.secure
        )

    # -- login limits -----------------------------------------------------------------

    def login_wait(self, request: Request, email: str) -> int:
        """Seconds until this attempt may be made (0: go ahead); each call counts as one.

        Both buckets are always charged, so spreading guesses over accounts does
        not spare the address's budget, nor spreading them over addresses the
        account's.
        """
        by_address = self._per_address.hit(client_ip(request) or "unknown")
        by_account = self._per_account.hit(email.strip().lower())
        wait = max(by_address, by_account)
        return max(1, math.ceil(wait)) if wait > 0 else 0


def safe_next(value: str | None) -> str:
    """Where to go after logging in: a dashboard path only (never another site)."""
    if value and value.startswith("/admin") and "//" not in value and "\\" not in value:
        return value
    return "/admin"


def install_handlers(app: FastAPI, ctx: WebContext, auth: AdminAuth) -> None:
    """Answer :class:`LoginRequired` and :class:`OwnerOnly` for every dashboard route."""

    async def login_required(request: Request, exc: Exception) -> Response:
        expired = isinstance(exc, LoginRequired) and exc.expired
        target = LOGIN_PATH
        if request.method == "GET":
            target += f"?next={quote(request.url.path, safe='/')}"
        if expired:
            target += ("&" if "?" in target else "?") + "ended=1"
        response = RedirectResponse(target, status_code=303, headers={"Cache-Control": "no-store"})
        if expired:
            auth.clear(response)
        return response

    async def owner_only(request: Request, exc: Exception) -> Response:
        return ctx.pages.page(
            request,
            "error.html",
            status_code=403,
            private=True,
            title="Only an owner can do that",
            message="Your account is a writer's. Ask the clinic's owner if you need this.",
        )

    app.add_exception_handler(LoginRequired, login_required)
    app.add_exception_handler(OwnerOnly, owner_only)
