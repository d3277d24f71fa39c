"""Web safety nets: security headers, CSRF tokens and a per-client rate limit.

CSRF uses the stateless "signed double submit" pattern: a random nonce lives
in a ``SameSite=Strict`` cookie and the form carries the nonce signed with the
folder's secret key and a timestamp; a post is accepted only when the two
agree and the signature is fresh. RFC 8058 one-click unsubscribe posts are
exempt: mail providers send them without cookies, and the signed unsubscribe
token in the URL is itself the proof.

The rate limit is an in-memory token bucket per client address: exact for one
process (``newsletter serve`` runs one), per process when several run.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from fastapi import Request, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pipeline.tokens import clocked_signer

Clock = Callable[[], datetime]

#: What every response carries. ``style-src 'unsafe-inline'`` is needed by the
#: archived emails (inline CSS is how email is styled); no script runs anywhere.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; img-src https: data:; style-src 'unsafe-inline'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


def policy_allowing(script: str) -> str:
    """The site's policy plus one script of ours (by its hash) and requests to this site.

    For the two dashboard pages with a few lines of script (live counts, the
    preview as you type); every other page allows no script at all.
    """
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    return f"{CONTENT_SECURITY_POLICY}; script-src 'sha256-{digest}'; connect-src 'self'"


def security_headers(base_url: str) -> dict[str, str]:
    """The headers added to every response."""
    headers = {
        "Content-Security-Policy": CONTENT_SECURITY_POLICY,
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        # Links carry personal tokens: never send them on to another site. Not
        # "no-referrer": under it browsers send "Origin: null" with our own forms, and
        # the CSRF check refuses a null origin.
        "Referrer-Policy": "same-origin",
        "Cross-Origin-Opener-Policy": "same-origin",
        "Permissions-Policy": "camera=(), microphone=(), geolocation=(), interest-cohort=()",
    }
    if base_url.startswith("https://"):
        headers["Strict-Transport-Security"] = "max-age=31536000"
    return headers


class SecurityHeadersMiddleware:
    """Pure ASGI middleware: adds the security headers to every HTTP response.

    Headers a route set itself win (a route may loosen nothing this way, only
    add, since every route here leaves them alone).
    """

    def __init__(self, app: ASGIApp, headers: dict[str, str]) -> None:
        self.app = app
        self.headers = [
            (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name for name, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in self.headers if k not in present]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def client_ip(request: Request) -> str:
    """The client's IP address, normalized, or "" when it is not one.

    It is the connection's peer, or what a proxy in ``[web] trusted_proxies``
    said in X-Forwarded-For (uvicorn applies it; from anyone else it is
    ignored). Whatever that header held, only a valid IP address comes out:
    this is the rate limit's key and the consent record's IP.
    """
    host = request.client.host if request.client else ""
    try:
        return str(ipaddress.ip_address(host.strip()))
    except ValueError:
        return ""


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of a URL, lower-cased, without a default port (as browsers send)."""
    parts = urlsplit(url.strip())
    scheme, netloc = parts.scheme.lower(), parts.netloc.lower().rpartition("@")[2]
    default = {"http": ":80", "https": ":443"}.get(scheme)
    if default and netloc.endswith(default):
        netloc = netloc[: -len(default)]
    return f"{scheme}://{netloc}"


# -- CSRF -----------------------------------------------------------------------------


@dataclass(frozen=True)
class CsrfTicket:
    """What a page with a form needs: the hidden field's value, and a cookie to set."""

    field_value: str
    new_cookie: str | None


class CsrfGuard:
    """Signed double-submit CSRF tokens bound to a cookie nonce."""

    FIELD = "csrf_token"

    def __init__(self, secret_key: str, clock: Clock, *, base_url: str, max_age: int) -> None:
        self._serializer = URLSafeTimedSerializer(
            secret_key, salt="newsletter-pipeline/csrf", signer=clocked_signer(clock)
        )
        self._max_age = max_age
        self._secure = base_url.startswith("https://")
        # __Host- cookies cannot be planted by a sibling subdomain (needs HTTPS).
        self.cookie_name = "__Host-nl_csrf" if self._secure else "nl_csrf"
        # Only [web] base_url's origin: never one built from the request's own Host header.
        self._origin = origin_of(base_url)

    def ticket(self, request: Request) -> CsrfTicket:
        """A field value for a form on this page, reusing the browser's nonce when it has one."""
        nonce = request.cookies.get(self.cookie_name, "")
        new_cookie = None
        if not _plausible_nonce(nonce):
            nonce = secrets.token_urlsafe(24)
            new_cookie = nonce
        return CsrfTicket(str(self._serializer.dumps(nonce)), new_cookie)

    def set_cookie(self, response: Response, nonce: str) -> None:
        """Attach the nonce cookie (session cookie, script-proof, same-site only)."""
        response.set_cookie(
            self.cookie_name,
            nonce,
            httponly=True,
            samesite="strict",
            secure=self._secure,
            path="/",
        )

    def check(self, request: Request, field_value: str | None) -> bool:
        """Whether a form post carries a fresh token matching its cookie, from our own origin.

        The origin is the Origin header, else the Referer's; it must be
        ``[web] base_url``'s. ``Origin: null`` (sandboxed frames, data: pages,
        privacy modes) is refused. A post with neither header (not a browser)
        relies on the token and the SameSite cookie alone.
        """
        origin = request.headers.get("origin")
        if origin is None and (referer := request.headers.get("referer")):
            origin = origin_of(referer)
        if origin is not None and origin.strip().lower() != self._origin:
            return False
        cookie = request.cookies.get(self.cookie_name, "")
        if not field_value or not _plausible_nonce(cookie):
            return False
        try:
            nonce = self._serializer.loads(field_value, max_age=self._max_age)
        except BadSignature:  # includes SignatureExpired
            return False
        return isinstance(nonce, str) and hmac.compare_digest(nonce, cookie)


def _plausible_nonce(value: str) -> bool:
    return 16 <= len(value) <= 64 and all(c.isalnum() or c in "-_" for c in value)


# -- rate limit -----------------------------------------------------------------------


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """A token bucket per key: ``burst`` at once, then ``per_hour`` spread over the hour.

    Memory stays bounded: past ``max_keys`` keys, buckets that have refilled
    completely (clients that went quiet) are dropped.
    """

    def __init__(self, burst: int, per_hour: int, clock: Clock, *, max_keys: int = 10_000) -> None:
        self._burst = float(burst)
        self._rate = per_hour / 3600.0  # tokens per second
        self._clock = clock
        self._max_keys = max_keys
        self._buckets: dict[str, _Bucket] = {}
        # Sync routes run in a thread pool.
        self._lock = threading.Lock()

    def hit(self, key: str) -> float:
        """Take one token for ``key``: 0.0 if allowed, else seconds until one is available."""
        now = self._clock().timestamp()
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                if len(self._buckets) >= self._max_keys:
                    self._prune(now)
                bucket = self._buckets[key] = _Bucket(self._burst, now)
            self._refill(bucket, now)
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return 0.0
            return (1.0 - bucket.tokens) / self._rate

    def _refill(self, bucket: _Bucket, now: float) -> None:
        elapsed = max(0.0, now - bucket.updated)
        bucket.tokens = min(self._burst, bucket.tokens + elapsed * self._rate)
        bucket.updated = now

    def _prune(self, now: float) -> None:
        for key, bucket in list(self._buckets.items()):
            self._refill(bucket, now)
            if bucket.tokens >= self._burst:
                del self._buckets[key]
        # Still full (a flood from many addresses): forget the longest-quiet tenth.
        if len(self._buckets) >= self._max_keys:
            quiet = sorted(self._buckets, key=lambda k: self._buckets[k].updated)
            for key in quiet[: max(1, self._max_keys // 10)]:
                del self._buckets[key]
