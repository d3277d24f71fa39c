"""How ``newsletter serve`` runs the app: uvicorn's limits, proxy trust and its own answers.

uvicorn (0.54) has no timeout for reading a request's headers: a client that
connects and never finishes them holds a connection (and a file descriptor)
for as long as it likes. :class:`GuardedH11Protocol` adds one: the headers
must be complete within :data:`HEADER_TIMEOUT` seconds of connecting, or of
the first byte of the next request on a kept-alive connection, else the
connection is closed. It also gives the answers uvicorn writes itself (400 for
a malformed request, 503 past the connection limit) the same security
headers every page of the app carries.

Proxy headers (``X-Forwarded-For``, ``X-Forwarded-Proto``) are honoured only
from ``[web] trusted_proxies``; with none (the default) they are ignored.
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar, Final

import h11
import uvicorn
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from pipeline.config import Settings
from pipeline.web.security import security_headers

#: Seconds a client has to send a request line and headers.
HEADER_TIMEOUT: Final = 10.0
#: Seconds an idle kept-alive connection stays open.
KEEP_ALIVE_TIMEOUT: Final = 5
#: Largest request line plus headers, in bytes; past it uvicorn answers 400.
MAX_HEADER_BYTES: Final = 16 * 1024
#: Seconds Ctrl-C waits for requests in progress before closing them.
GRACEFUL_SHUTDOWN: Final = 10


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a header timeout and our headers on its own answers.

    ``server_config`` makes a subclass per server with the class attributes set.
    """

    extra_headers: ClassVar[tuple[tuple[bytes, bytes], ...]] = ()
    header_timeout: ClassVar[float] = HEADER_TIMEOUT

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timer: asyncio.TimerHandle | None = None
        # uvicorn's own over-limit answer is a bare 503: take the check over (same rule)
        # so the 503 carries the security headers too.
        self._limit = self.limit_concurrency
        self.limit_concurrency = None
        self.app = self._limited(self.app)

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        # IDLE: still waiting for (the rest of) a request line and headers.
        if self.conn.their_state is h11.IDLE:
            if self._header_timer is None:
                self._arm_header_timer()
        else:
            self._disarm_header_timer()

    def _arm_header_timer(self) -> None:
        self._header_timer = self.loop.call_later(self.header_timeout, self._headers_too_slow)

    def _disarm_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.logger.info("closing a connection that sent no complete headers in time")
            self.transport.close()

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to a malformed request, with the security headers."""
        headers = [
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"connection", b"close"),
            *self.extra_headers,
        ]
        for event in (
            h11.Response(status_code=400, headers=headers, reason=b"Bad Request"),
            h11.Data(data=msg.encode("ascii")),
            h11.EndOfMessage(),
        ):
            self.transport.write(self.conn.send(event) or b"")
        self.transport.close()

    def _limited(self, app: ASGIApp) -> ASGIApp:
        async def guarded(scope: Scope, receive: Receive, send: Send) -> None:
            # uvicorn tests before adding the request's task; ours is already counted.
            limit = self._limit
            if limit is not None and (len(self.connections) >= limit or len(self.tasks) > limit):
                self.logger.warning("Exceeded concurrency limit.")
                await _service_unavailable(send, self.extra_headers)
                return
            await app(scope, receive, send)

        return guarded


async def _service_unavailable(send: Send, extra: tuple[tuple[bytes, bytes], ...]) -> None:
    headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"connection", b"close")]
    await send({"type": "http.response.start", "status": 503, "headers": [*headers, *extra]})
    await send({"type": "http.response.body", "body": b"Service Unavailable"})


class HeadAsGetMiddleware:
    """``HEAD`` on any route answers as ``GET`` would, without the body.

    FastAPI routes list only the methods they declare, so a HEAD would be 405.
    Every GET here is free of side effects, so running it for a HEAD is safe.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def headers_only(message: Message) -> None:
            if message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, headers_only)


def server_config(
    app: ASGIApp,
    settings: Settings,
    host: str,
    port: int,
    *,
    header_timeout: float = HEADER_TIMEOUT,
) -> uvicorn.Config:
    """uvicorn's settings for ``serve``: limits, timeouts, proxy trust, our protocol."""
    web = settings.web
    encoded = tuple(
        (name.lower().encode("latin-1"), value.encode("latin-1"))
        for name, value in security_headers(web.base_url).items()
    )
    protocol = type(
        "NewsletterH11Protocol",
        (GuardedH11Protocol,),
        {"extra_headers": encoded, "header_timeout": header_timeout},
    )
    trusted = list(web.trusted_proxies)
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=protocol,
        log_level="warning",
        # uvicorn's default trusts X-Forwarded-For from 127.0.0.1: off unless configured.
        proxy_headers=bool(trusted),
        forwarded_allow_ips=trusted or None,
        limit_concurrency=web.max_connections,
        timeout_keep_alive=KEEP_ALIVE_TIMEOUT,
        h11_max_incomplete_event_size=MAX_HEADER_BYTES,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN,
        server_header=False,
    )
