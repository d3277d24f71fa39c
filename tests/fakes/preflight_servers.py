"""Loopback HTTP servers for the preflight tests: a redirecting site, links that 404 or hang."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import uvicorn

from pipeline.newsletter import Newsletter
from pipeline.web.app import create_app

#: Set at the end of a test so a hanging handler returns (bounded anyway).
release = threading.Event()


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass

    def _answer(self, code: int, location: str | None = None) -> None:
        self.send_response(code)
        if location:
            self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _route(self) -> None:
        path = self.path
        if path.startswith("/slow"):
            release.wait(timeout=10)  # longer than the link timeout under test
            self._answer(200)
        elif path.startswith("/missing"):
            self._answer(404)
        elif path.startswith("/no-head") and self.command == "HEAD":
            self._answer(405)
        elif path.startswith("/unsubscribe/") and self.command == "POST":
            # A proxy sending everything to https: providers do not follow it.
            self._answer(301, "https://news.example.com" + path)
        else:
            self._answer(200)

    do_GET = do_HEAD = do_POST = _route


@contextmanager
def plain_server() -> Iterator[str]:
    """A redirecting site with 404 and slow links; yields its base URL."""
    release.clear()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        release.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@contextmanager
def app_server(newsletter: Newsletter) -> Iterator[str]:
    """The real web app on a loopback port; yields its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)  # connections wait in the backlog until uvicorn serves: no polling
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(create_app(newsletter), log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
