"""Feeds over HTTP, from a loopback server with one behaviour per path.

Conditional GET (ETag, Last-Modified), redirects and relative links, HTTP errors,
a server that never answers and a refused connection.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from pipeline.content.articles import read_article
from pipeline.store.models import FeedSource
from tests.feeds.feed_helpers import FEEDS, SYDNEY, run


@dataclass
class Route:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/rss+xml; charset=utf-8"
    etag: str | None = None
    last_modified: str | None = None
    hang: bool = False
    location: str | None = None


@dataclass
class FeedServer:
    """A loopback HTTP server with one behaviour per path; it records request headers."""

    routes: dict[str, Route] = field(default_factory=dict)
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    port: int = 0

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


def _handler(server: FeedServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            server.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
            route = server.routes.get(self.path, Route(status=404, body=b"not found"))
            if route.hang:
                server.release.wait(timeout=5)  # bounded, and released at teardown
            fresh = (route.etag and self.headers.get("If-None-Match") == route.etag) or (
                route.last_modified and self.headers.get("If-Modified-Since") == route.last_modified
            )
            status = 304 if fresh else route.status
            self.send_response(status)
            if route.location:
                self.send_header("Location", route.location)
            if route.etag:
                self.send_header("ETag", route.etag)
            if route.last_modified:
                self.send_header("Last-Modified", route.last_modified)
            body = b"" if status == 304 else route.body
            if status != 304:
                self.send_header("Content-Type", route.content_type)
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            with contextlib.suppress(OSError):  # the client gave up (the timeout test)
                self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FeedServer]:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    state = FeedServer()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    httpd.daemon_threads = True
    state.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield state
    finally:
        state.release.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


LAST_MODIFIED = format_datetime(datetime(2023, 2, 22, 1, 22, 10, tzinfo=UTC), usegmt=True)


def test_conditional_get_round_trip(
    server: FeedServer, articles: Path, sessions: sessionmaker[Session]
) -> None:
    server.routes["/feed"] = Route(
        body=(FEEDS / "squarespace.xml").read_bytes(),
        etag='"v1"',
        last_modified=LAST_MODIFIED,
    )
    first = run(server.url("/feed"), articles, sessions)
    assert len(first.added) == 3 and not first.not_modified
    second = run(server.url("/feed"), articles, sessions)
    assert second.not_modified and second.added == () and second.readable
    (_, headers1), (_, headers2) = server.requests
    assert "if-none-match" not in headers1
    assert headers1["user-agent"].startswith("newsletter-pipeline/")
    assert headers2["if-none-match"] == '"v1"'
    assert headers2["if-modified-since"] == LAST_MODIFIED
    with sessions() as session:
        source = session.query(FeedSource).one()
        assert (source.url, source.etag) == (server.url("/feed"), '"v1"')


def test_a_partial_import_does_not_skip_the_next_download(
    server: FeedServer, articles: Path, sessions: sessionmaker[Session]
) -> None:
    server.routes["/feed"] = Route(body=(FEEDS / "squarespace.xml").read_bytes(), etag='"v1"')
    run(server.url("/feed"), articles, sessions, limit=1)
    report = run(server.url("/feed"), articles, sessions)
    assert "if-none-match" not in server.requests[1][1]
    assert [a.part for a in report.added] == [2, 3]


def test_relative_links_over_http_resolve_against_the_final_url(
    server: FeedServer, articles: Path
) -> None:
    server.routes["/old"] = Route(status=301, location="/blog/rss.xml")
    server.routes["/blog/rss.xml"] = Route(body=(FEEDS / "relative-links.xml").read_bytes())
    report = run(server.url("/old"), articles)
    assert report.problems == ()
    article = read_article(articles / "posture-at-the-desk.md", SYDNEY)
    assert article.canonical_url == server.url("/blog/posture-at-the-desk")
    assert f"({server.url('/contact')})" in article.body_markdown
    assert f"({server.url('/images/desk.jpg')})" in article.body_markdown


def test_relative_links_resolve_against_the_entrys_page_not_the_feed_host(
    server: FeedServer, articles: Path
) -> None:
    # The feed comes through a proxy on another host; the entries live on the blog.
    body = (
        (FEEDS / "relative-links.xml")
        .read_bytes()
        .replace(
            b"<link>/blog/posture-at-the-desk</link>",
            b"<link>https://relative.example/blog/posture-at-the-desk</link>",
        )
    )
    server.routes["/proxy/feed.xml"] = Route(body=body)
    report = run(server.url("/proxy/feed.xml"), articles)
    assert report.problems == ()
    article = read_article(articles / "posture-at-the-desk.md", SYDNEY)
    assert "(https://relative.example/contact)" in article.body_markdown
    assert "(https://relative.example/blog/images/chair.jpg)" in article.body_markdown
    assert article.image == "https://relative.example/images/desk.jpg"
    assert "127.0.0.1" not in article.body_markdown


@pytest.mark.parametrize(
    ("route", "message"),
    [
        (
            Route(status=500, body=b"<rss version='2.0'><channel/></rss>"),
            "the server answered HTTP 500 Internal Server Error",
        ),
        (Route(status=404, body=b"gone"), "the server answered HTTP 404 Not Found"),
        (
            Route(
                body=b"<!doctype html><html><body><p>Blog</p></body></html>",
                content_type="text/html",
            ),
            "a web page, not an RSS or Atom feed",
        ),
    ],
)
def test_http_failures_are_one_line(
    server: FeedServer, articles: Path, route: Route, message: str
) -> None:
    server.routes["/feed"] = route
    report = run(server.url("/feed"), articles)
    assert not report.readable and report.added == ()
    assert len(report.problems) == 1
    assert report.problems[0].startswith(f"{server.url('/feed')}: {message}")


def test_a_server_that_does_not_answer_times_out(server: FeedServer, articles: Path) -> None:
    server.routes["/slow"] = Route(body=b"", hang=True)
    started = time.monotonic()
    report = run(server.url("/slow"), articles, timeout=0.3)
    assert time.monotonic() - started < 3
    assert report.problems == (f"{server.url('/slow')}: no answer within 0.3 s; nothing imported",)
    assert not report.readable


def test_a_refused_connection_is_one_line(articles: Path) -> None:
    # A port that was free a moment ago: nothing listens on it now.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/feed"
    report = run(url, articles, timeout=2)
    assert not report.readable
    assert len(report.problems) == 1
    assert report.problems[0].startswith(f"{url}: cannot fetch the feed (")
