"""What a black-box probe of the web app found (issue 12): enumeration, proxies, CSRF, HEAD,
signed webhook edge cases and large batches, through the app and a real server on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import socket
import statistics
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from sqlalchemy import event as sa_event
from sqlalchemy import select
from starlette.testclient import TestClient

from pipeline.cli import main
from pipeline.newsletter import Newsletter
from pipeline.store import confirmations
from pipeline.store.models import Subscriber
from pipeline.web.app import create_app
from pipeline.web.security import client_ip
from pipeline.web.server import MAX_HEADER_BYTES, GuardedH11Protocol, server_config
from pipeline.web.webhooks import MAX_IN_FLIGHT
from tests.events.test_webhooks import public_key_b64, signed_headers
from tests.helpers import FixedClock
from tests.web.test_web import (
    BASE_URL,
    csrf_from,
    make_newsletter,
    status_of,
    subscriber,
    unsubscribe_url,
    web_client,
)
from tests.web.test_web_subscribe import NEW, subscribe

pytestmark = pytest.mark.anyio

SAM = "sam.nguyen@example.com"  # active in the sample list
PRIYA = "priya.sharma@example.com"
HOSTILE = "<img src=x onerror=alert(1)>"


def _web_settings(**values: str) -> Any:
    """An edit_settings function adding lines under ``[web]``."""
    lines = "".join(f"{key} = {value}\n" for key, value in values.items())
    return lambda text: text.replace("[web]\n", f"[web]\n{lines}", 1)


def _subscribers(newsletter: Newsletter) -> list[tuple[Any, ...]]:
    with newsletter.sessions() as session:
        rows = session.scalars(select(Subscriber).order_by(Subscriber.id)).all()
        return [(r.id, r.email, r.status, r.first_name, r.confirm_sent_at) for r in rows]


# -- 2. whether an address is subscribed cannot be told apart -----------------------------


async def test_new_active_and_gone_addresses_get_the_same_answer_and_the_same_work(
    newsletter: Newsletter, app: FastAPI
) -> None:
    async with web_client(app) as client:
        await client.post(unsubscribe_url(newsletter, PRIYA))  # one who left
    answers = {}
    async with web_client(app, deliver=False) as client:
        for address in (NEW, SAM, PRIYA):
            before = _subscribers(newsletter)
            queued = len(confirmations.pending(newsletter.sessions))
            answers[address] = await subscribe(client, address)
            # The request itself writes one queue row and touches nobody's record.
            assert _subscribers(newsletter) == before
            assert len(confirmations.pending(newsletter.sessions)) == queued + 1
    address_shown = re.compile(r"<strong>[^<]*</strong>")
    first = answers[NEW]
    for address, answer in answers.items():
        assert answer.status_code == 200, address
        assert address_shown.sub("", answer.text) == address_shown.sub("", first.text), address
    # The background sender then does what each needs: only the new one is emailed,
    # the one who left is asked to confirm coming back, the active one gets nothing.
    assert app.state.confirmations.step() == 3
    assert status_of(newsletter, NEW) == "pending"
    assert subscriber(newsletter, NEW).confirm_sent_at is not None
    assert subscriber(newsletter, PRIYA).confirm_sent_at is not None
    assert subscriber(newsletter, SAM).confirm_sent_at is None
    assert confirmations.pending(newsletter.sessions) == []


def test_new_and_active_addresses_take_the_same_time(tmp_path: Path) -> None:
    # Medians over interleaved requests; before the fix a new address took about three
    # times as long (its email was rendered and sent inside the request).
    newsletter = make_newsletter(
        tmp_path / "clinic", edit_settings=_web_settings(subscribe_burst="1000")
    )
    client = TestClient(create_app(newsletter), base_url=BASE_URL)  # no lifespan: no sender
    token = csrf_from(client.get("/subscribe").text)

    def post(address: str) -> float:
        started = time.perf_counter()
        response = client.post("/subscribe", data={"email": address, "csrf_token": token})
        elapsed = time.perf_counter() - started
        assert response.status_code == 200
        return elapsed

    for n in range(5):  # warm up both paths
        post(f"warm{n}@example.com")
        post(SAM)
    new, active = [], []
    for n in range(30):
        new.append(post(f"reader{n}@example.com"))
        active.append(post(SAM))
    new_median, active_median = statistics.median(new), statistics.median(active)
    slower, faster = max(new_median, active_median), min(new_median, active_median)
    assert slower / faster < 1.5 or slower - faster < 0.003, (new_median, active_median)


# -- 3. X-Forwarded-For only from trusted proxies -----------------------------------------


def _served_app(newsletter: Newsletter) -> Any:
    """The app exactly as ``serve`` wraps it (uvicorn's proxy-headers middleware or not)."""
    app = create_app(newsletter)
    config = server_config(app, newsletter.settings, "127.0.0.1", 8000)
    config.load()
    return app, config.loaded_app


def _client(asgi: Any, ip: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=asgi, client=(ip, 50123))
    return httpx.AsyncClient(transport=transport, base_url=BASE_URL)


async def test_forwarded_for_is_ignored_without_trusted_proxies(newsletter: Newsletter) -> None:
    app, served = _served_app(newsletter)
    async with _client(served, "127.0.0.1") as client:
        # Each post claims to come from somewhere else; all count against 127.0.0.1.
        for n in range(5):
            spoofed = {"X-Forwarded-For": f"198.51.100.{n}"}
            form = await client.get("/subscribe")
            data = {"email": f"r{n}@example.com", "csrf_token": csrf_from(form.text)}
            assert (await client.post("/subscribe", data=data, headers=spoofed)).status_code == 200
        form = await client.get("/subscribe")
        data = {"email": NEW, "csrf_token": csrf_from(form.text)}
        other = {"X-Forwarded-For": "203.0.113.99"}
        assert (await client.post("/subscribe", data=data, headers=other)).status_code == 429
    # The consent IP is the connection's, not the header's.
    app.state.confirmations.step()
    link = _confirm_link(newsletter, "r0@example.com")
    async with _client(served, "127.0.0.1") as client:
        spoofed = {"X-Forwarded-For": HOSTILE}
        page = await client.get(link, headers=spoofed)
        data = {"csrf_token": csrf_from(page.text)}
        assert (await client.post(link, data=data, headers=spoofed)).status_code == 200
    assert subscriber(newsletter, "r0@example.com").consent_ip == "127.0.0.1"


def _confirm_link(newsletter: Newsletter, address: str) -> str:
    from tests.web.test_web import confirm_link

    return confirm_link(newsletter, address)


async def test_trusted_proxies_are_believed_but_only_a_valid_ip_is_stored(
    tmp_path: Path, clock: FixedClock
) -> None:
    newsletter = make_newsletter(
        tmp_path / "clinic",
        clock=clock,
        edit_settings=_web_settings(trusted_proxies='["127.0.0.1", "10.0.0.1/8"]'),
    )
    assert newsletter.settings.web.trusted_proxies == ("127.0.0.1/32", "10.0.0.0/8")
    app, served = _served_app(newsletter)
    for address, forwarded, stored in (
        (NEW, "203.0.113.9", "203.0.113.9"),
        ("other@example.com", HOSTILE, ""),
    ):
        async with _client(served, "127.0.0.1") as client:
            headers = {"X-Forwarded-For": forwarded}
            form = await client.get("/subscribe", headers=headers)
            data = {"email": address, "csrf_token": csrf_from(form.text)}
            assert (await client.post("/subscribe", data=data, headers=headers)).status_code == 200
            app.state.confirmations.step()
            link = _confirm_link(newsletter, address)
            page = await client.get(link, headers=headers)
            await client.post(link, data={"csrf_token": csrf_from(page.text)}, headers=headers)
        assert subscriber(newsletter, address).consent_ip == stored


def test_a_hostile_client_address_never_becomes_an_ip() -> None:
    from starlette.requests import Request

    def ip(host: str) -> str:
        return client_ip(Request({"type": "http", "client": (host, 1), "headers": []}))

    assert ip(HOSTILE) == "" and ip("unknown") == "" and ip("1.2.3.4, 5.6.7.8") == ""
    assert ip("203.0.113.9") == "203.0.113.9" and ip("2001:DB8::1") == "2001:db8::1"


def test_check_refuses_a_trusted_proxy_that_is_not_an_address(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_newsletter(tmp_path / "clinic", send=False)
    path = tmp_path / "clinic" / "newsletter.toml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("[web]\n", '[web]\ntrusted_proxies = ["proxy.local"]\n', 1))
    assert main(["--config", str(path), "check"]) == 1
    said = " ".join(capsys.readouterr().err.split())  # the console wraps long lines
    assert "'proxy.local' is not an IP address or CIDR network" in said
    path.write_text(text.replace("[web]\n", '[web]\ntrusted_proxies = ["10.1.2.3/8"]\n', 1))
    assert main(["--config", str(path), "check"]) == 0


# -- 4. limits: serve's uvicorn settings, the webhook before its body ----------------------


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


@pytest.fixture
def signed_newsletter(tmp_path: Path, clock: FixedClock) -> Newsletter:
    return make_newsletter(
        tmp_path / "signed",
        clock=clock,
        environ={"SENDGRID_WEBHOOK_PUBLIC_KEY": public_key_b64()},
    )


async def test_an_unsigned_webhook_is_refused_before_its_body_is_read(
    signed_newsletter: Newsletter,
) -> None:
    consumed = 0

    async def big_body() -> AsyncIterator[bytes]:
        nonlocal consumed
        for _ in range(64):  # 4 MB, streamed
            consumed += 1
            yield b" " * 65536

    async with web_client(create_app(signed_newsletter)) as client:
        response = await client.post("/webhooks/sendgrid", content=big_body())
    assert response.status_code == 403
    assert consumed == 0


async def test_webhook_bodies_in_flight_are_bounded(
    signed_newsletter: Newsletter, clock: FixedClock
) -> None:
    body = b"[]"
    headers = signed_headers(body, int(clock.now.timestamp()))
    release = asyncio.Event()
    started = 0
    all_started = asyncio.Event()

    async def slow_body() -> AsyncIterator[bytes]:
        nonlocal started
        yield body[:1]
        started += 1
        if started == MAX_IN_FLIGHT:
            all_started.set()
        await release.wait()
        yield body[1:]

    async with web_client(create_app(signed_newsletter)) as client:
        held = [
            asyncio.create_task(
                client.post("/webhooks/sendgrid", content=slow_body(), headers=headers)
            )
            for _ in range(MAX_IN_FLIGHT)
        ]
        await asyncio.wait_for(all_started.wait(), timeout=10)
        turned_away = await asyncio.wait_for(
            client.post("/webhooks/sendgrid", content=body, headers=headers), timeout=10
        )
        release.set()
        finished = await asyncio.wait_for(asyncio.gather(*held), timeout=10)
        assert turned_away.status_code == 503 and "Retry-After" in turned_away.headers
        assert [r.status_code for r in finished] == [200] * MAX_IN_FLIGHT
        # Room again once they are done.
        again = await client.post("/webhooks/sendgrid", content=body, headers=headers)
        assert again.status_code == 200


# -- 5. signed but unparsable bodies; large batches in chunks -----------------------------


async def test_every_unparsable_signed_body_is_400(
    signed_newsletter: Newsletter, clock: FixedClock
) -> None:
    stamp = int(clock.now.timestamp())
    bodies = {
        "nested brackets": b"[" * 100_000 + b"]" * 100_000,
        "not UTF-8": b'[{"event": "bounce", "email": "\xff@example.com"}]',
        "an object": b'{"event": "bounce"}',
        "a number": b"42",
    }
    async with web_client(create_app(signed_newsletter), raise_errors=False) as client:
        for name, body in bodies.items():
            response = await client.post(
                "/webhooks/sendgrid", content=body, headers=signed_headers(body, stamp)
            )
            assert response.status_code == 400, name


async def test_a_large_batch_is_recorded_in_short_transactions(
    signed_newsletter: Newsletter, clock: FixedClock
) -> None:
    stamp = int(clock.now.timestamp())
    items = [
        {"email": f"r{n}@example.com", "event": "delivered", "sg_event_id": uuid.uuid4().hex}
        for n in range(20_000)
    ]
    body = json.dumps(items).encode()
    commits = 0

    def count(_connection: Any) -> None:
        nonlocal commits
        commits += 1

    engine = signed_newsletter.engine
    sa_event.listen(engine, "commit", count)
    try:
        async with web_client(create_app(signed_newsletter)) as client:
            response = await client.post(
                "/webhooks/sendgrid", content=body, headers=signed_headers(body, stamp)
            )
    finally:
        sa_event.remove(engine, "commit", count)
    assert response.status_code == 200 and response.json()["stored"] == 20_000
    # 500 events per transaction: the write lock is never held for the whole batch.
    assert commits >= 40


# -- 8. CSRF origin, HEAD, uvicorn's own error page ------------------------------------------


async def test_the_form_is_accepted_only_from_base_url_s_origin(
    newsletter: Newsletter, client: httpx.AsyncClient
) -> None:
    refused = {
        "Origin: null": {"Origin": "null"},
        "an origin from our own Host header": {
            "Host": "attacker.example",
            "Origin": "http://attacker.example",
        },
        "a foreign Referer": {"Referer": "https://evil.example/page"},
    }
    for name, headers in refused.items():
        form = await client.get("/subscribe")
        data = {"email": NEW, "csrf_token": csrf_from(form.text)}
        assert (await client.post("/subscribe", data=data, headers=headers)).status_code == 400, (
            name
        )
    assert status_of(newsletter, NEW) == "absent"
    for headers in ({"Origin": BASE_URL}, {"Referer": f"{BASE_URL}/subscribe"}):
        form = await client.get("/subscribe")
        data = {"email": NEW, "csrf_token": csrf_from(form.text)}
        assert (await client.post("/subscribe", data=data, headers=headers)).status_code == 200
    assert status_of(newsletter, NEW) == "pending"


async def test_head_answers_like_get_without_a_body(
    newsletter: Newsletter, client: httpx.AsyncClient
) -> None:
    for path in ("/archive", "/subscribe", "/archive/feed.xml", unsubscribe_url(newsletter, SAM)):
        get = await client.get(path)
        head = await client.head(path)
        assert head.status_code == get.status_code == 200, path
        assert head.content == b""
        assert head.headers["content-type"] == get.headers["content-type"]
        assert head.headers["content-length"] == get.headers["content-length"]
    assert (await client.head("/no/such/page")).status_code == 404
    assert status_of(newsletter, SAM) == "active"  # HEAD on an unsubscribe link changes nothing


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
