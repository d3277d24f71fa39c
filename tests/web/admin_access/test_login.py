"""Logging in and out: the session cookie's flags, one refusal for a wrong password or
address, the session ending after inactivity, and the login limits per account and per
address."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from pipeline.accounts import hash_password
from pipeline.store.users import add_user
from pipeline.web.admin.auth import LOGIN_BURST_PER_ACCOUNT, LOGIN_BURST_PER_ADDRESS
from pipeline.web.app import create_app
from tests.helpers import FixedClock
from tests.web.admin_helpers import OWNER, PASSWORD, WRITER, log_in, signed_in
from tests.web.helpers import csrf_from, make_newsletter, web_client

pytestmark = pytest.mark.anyio

# -- login, logout, inactivity ------------------------------------------------------------


async def test_login_cookie_flags_and_logout_ends_every_copy(app: FastAPI) -> None:
    async with web_client(app) as client:
        answer = await log_in(client, OWNER)
        set_cookie = answer.headers["set-cookie"].lower()
        assert "nl_admin=" in set_cookie and "httponly" in set_cookie
        assert "samesite=lax" in set_cookie and "secure" not in set_cookie  # base_url is http
        copy = client.cookies["nl_admin"]
        page = await client.get("/admin")
        assert page.status_code == 200 and OWNER in page.text
        logout = await client.post("/admin/logout", data={"csrf_token": csrf_from(page.text)})
        assert logout.status_code == 303
        client.cookies.set("nl_admin", copy)  # a copy kept from before the logout
        assert (await client.get("/admin")).status_code == 303


async def test_a_wrong_password_or_address_gets_the_same_refusal(app: FastAPI) -> None:
    async with web_client(app) as client:
        wrong_password = await log_in(client, OWNER, "not the password")
        no_such_account = await log_in(client, "nobody@clinic.example")
        assert wrong_password.status_code == no_such_account.status_code == 401
        assert "don&#39;t match an account" in wrong_password.text
        assert "nl_admin" not in client.cookies


async def test_a_session_ends_after_inactivity(app: FastAPI, clock: FixedClock) -> None:
    async with signed_in(app, WRITER) as client:
        clock.advance(minutes=29)
        assert (await client.get("/admin")).status_code == 200  # activity renews the session
        clock.advance(minutes=29)
        assert (await client.get("/admin")).status_code == 200
        clock.advance(minutes=31)
        ended = await client.get("/admin")
        assert ended.status_code == 303 and "ended=1" in ended.headers["location"]
        login = await client.get(ended.headers["location"])
        assert "without activity" in login.text


async def test_https_base_url_makes_the_cookie_secure_and_host_only(tmp_path: Path) -> None:
    nl = make_newsletter(
        tmp_path / "clinic",
        send=False,
        edit_settings=lambda t: t.replace("http://127.0.0.1:8000", "https://news.clinic.example"),
    )
    add_user(nl.sessions, OWNER, "owner", hash_password(PASSWORD), nl.clock())
    transport = httpx.ASGITransport(app=create_app(nl), client=("127.0.0.1", 5000))
    async with httpx.AsyncClient(
        transport=transport, base_url="https://news.clinic.example"
    ) as client:
        answer = await log_in(client, OWNER)
        assert answer.status_code == 303
        cookie = answer.headers["set-cookie"]
        assert cookie.startswith("__Host-nl_admin=") and "Secure" in cookie


# -- the login limit ----------------------------------------------------------------------


async def test_login_attempts_are_limited_per_account(app: FastAPI) -> None:
    # From many addresses, one account: the account's budget runs out.
    for attempt in range(LOGIN_BURST_PER_ACCOUNT):
        async with web_client(app, ip=f"10.0.0.{attempt + 1}") as client:
            assert (await log_in(client, OWNER, "guess")).status_code == 401
    async with web_client(app, ip="10.0.1.1") as client:
        limited = await log_in(client, OWNER)  # even the right password waits now
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) > 0
        assert "nl_admin" not in client.cookies
        # Another account from a fresh address is unaffected.
        assert (await log_in(client, WRITER)).status_code == 303


async def test_login_attempts_are_limited_per_address(app: FastAPI, clock: FixedClock) -> None:
    async with web_client(app, ip="10.9.9.9") as client:
        for n in range(LOGIN_BURST_PER_ADDRESS):
            # A different account each time: the account limit never applies.
            assert (await log_in(client, f"guess{n}@clinic.example")).status_code == 401
        limited = await log_in(client, WRITER)
        assert limited.status_code == 429
        clock.advance(hours=1)  # the bucket refills with time
        assert (await log_in(client, WRITER)).status_code == 303
    async with web_client(app, ip="10.9.9.10") as other:
        assert (await log_in(other, OWNER)).status_code == 303
