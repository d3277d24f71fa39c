"""``serve``'s uvicorn: its limits, timeouts and (no) proxy trust, and a real server on
loopback whose own error pages carry the security headers and which cuts off a client that
never finishes its headers."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import uvicorn

from pipeline.newsletter import Newsletter
from pipeline.web.app import create_app
from pipeline.web.server import MAX_HEADER_BYTES, GuardedH11Protocol, server_config

# -- 4. limits: serve's uvicorn settings ----------------------------------------------------


def test_serve_sets_limits_timeouts_and_no_proxy_trust(newsletter: Newsletter) -> None:
    config = server_config(create_app(newsletter), newsletter.settings, "127.0.0.1", 8000)
    assert config.limit_concurrency == newsletter.settings.web.max_connections == 100
    assert config.timeout_keep_alive == 5
    assert config.h11_max_incomplete_event_size == MAX_HEADER_BYTES
    assert config.proxy_headers is False
    assert isinstance(config.http, type) and issubclass(config.http, GuardedH11Protocol)
    assert config.http.header_timeout == 10.0
    names = {name for name, _ in config.http.extra_headers}
    assert {b"content-security-policy", b"x-content-type-options"} <= names


# -- a real server on loopback: uvicorn's own answers and the header timeout --------------


@contextlib.contextmanager
def _serving(newsletter: Newsletter, *, header_timeout: float) -> Iterator[int]:
    """``serve``'s uvicorn configuration, running in a thread on a free loopback port."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    config = server_config(
        create_app(newsletter),
        newsletter.settings,
        "127.0.0.1",
        port,
        header_timeout=header_timeout,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started:  # bounded: uvicorn sets this once it listens
            assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
            time.sleep(0.02)
        yield port
    finally:
        server.should_exit = True
        thread.join(timeout=20)
        sock.close()


def _exchange(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(data)
        received = b""
        while chunk := conn.recv(65536):
            received += chunk
        return received


def test_uvicorn_s_own_400_page_carries_the_security_headers(newsletter: Newsletter) -> None:
    with _serving(newsletter, header_timeout=10) as port:
        answer = _exchange(port, b"GET /archive HTTP/1.1 garbage\r\nHost: x\r\n\r\n")
        huge = _exchange(port, b"GET / HTTP/1.1\r\nX-Big: " + b"a" * (MAX_HEADER_BYTES + 10))
        head = _exchange(port, b"HEAD /archive HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    for raw in (answer, huge):
        status, _, rest = raw.partition(b"\r\n")
        assert status.startswith(b"HTTP/1.1 400"), raw[:200]
        headers = rest.lower()
        assert b"content-security-policy: default-src 'none'" in headers
        assert b"x-content-type-options: nosniff" in headers
        assert b"x-frame-options: deny" in headers
    assert head.startswith(b"HTTP/1.1 200") and head.endswith(b"\r\n\r\n")


def test_a_client_that_never_finishes_its_headers_is_cut_off(newsletter: Newsletter) -> None:
    with _serving(newsletter, header_timeout=0.3) as port:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
            started = time.monotonic()
            conn.sendall(b"GET /archive HTTP/1.1\r\nHost: x\r\n")  # no blank line, ever
            assert conn.recv(1024) == b""  # closed by the server, not by our 10 s timeout
            assert time.monotonic() - started < 9
        # A kept-alive connection gets the same bound for its next request's headers.
        with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
            conn.sendall(b"GET /archive HTTP/1.1\r\nHost: x\r\n\r\n")
            first = conn.recv(65536)
            assert first.startswith(b"HTTP/1.1 200")
            conn.sendall(b"GET /archive HTTP/1.1\r\n")
            rest = b""
            while chunk := conn.recv(65536):
                rest += chunk
            assert b"HTTP/1.1" not in rest  # closed without a second answer
