"""The dashboard's foundation (issue 15): accounts, the login, sessions, roles, CSRF, the
first-run setup link and the queue page, through the app in-process (httpx ASGI)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute

from pipeline.accounts import SetupLinks, hash_password
from pipeline.newsletter import Newsletter
from pipeline.store.scheduler_state import SchedulerStateStore
from pipeline.store.users import add_user, count_users, find_user
from pipeline.web.admin import PUBLIC_ADMIN_PATHS
from pipeline.web.admin.auth import LOGIN_BURST_PER_ACCOUNT, LOGIN_BURST_PER_ADDRESS
from pipeline.web.app import create_app
from tests.helpers import FixedClock
from tests.web.test_web import SECRET, csrf_from, make_newsletter, web_client

pytestmark = pytest.mark.anyio

OWNER = "owner@clinic.example"
WRITER = "writer@clinic.example"
PASSWORD = "correct horse battery"

#: Every dashboard route and who may use it. A new route must be added here, so the tests
#: below cover it (test_every_admin_route_is_classified fails otherwise).
ROUTES: dict[tuple[str, str], str] = {
    ("GET", "/admin"): "writer",
    ("POST", "/admin/logout"): "writer",
    ("GET", "/admin/articles/new"): "writer",
    ("POST", "/admin/articles/new"): "writer",
    ("POST", "/admin/articles/preview"): "writer",
    ("GET", "/admin/articles/{slug}/edit"): "writer",
    ("POST", "/admin/articles/{slug}/edit"): "writer",
    ("GET", "/admin/articles/{slug}/preview"): "writer",
    ("POST", "/admin/articles/{slug}/preview"): "writer",
    ("POST", "/admin/articles/{slug}/test-send"): "writer",
    ("POST", "/admin/queue/{slug}/move"): "writer",
    ("POST", "/admin/queue/{slug}/status"): "writer",
    ("GET", "/admin/subscribers"): "owner",
    ("GET", "/admin/subscribers/{who}"): "owner",
    ("GET", "/admin/subscribers/{who}/remove"): "owner",
    ("POST", "/admin/subscribers/{who}/remove"): "owner",
    ("GET", "/admin/subscribers/{who}/forget"): "owner",
    ("POST", "/admin/subscribers/{who}/forget"): "owner",
    ("GET", "/admin/subscribers/import"): "owner",
    ("POST", "/admin/subscribers/import"): "owner",
    ("GET", "/admin/subscribers/export.csv"): "owner",
    ("POST", "/admin/schedule/pause"): "owner",
    ("POST", "/admin/schedule/resume"): "owner",
    ("GET", "/admin/schedule"): "owner",
    ("POST", "/admin/schedule/one-offs"): "owner",
    ("POST", "/admin/schedule/one-offs/cancel"): "owner",
    ("POST", "/admin/schedule/holds/release"): "owner",
    ("GET", "/admin/send/{slug}"): "owner",
    ("POST", "/admin/send/{slug}"): "owner",
    ("GET", "/admin/campaigns"): "owner",
    ("GET", "/admin/campaigns/{slug}"): "owner",
    ("GET", "/admin/campaigns/{slug}/live"): "owner",
    ("POST", "/admin/campaigns/{slug}/retry"): "owner",
    ("GET", "/admin/campaigns/{slug}/resend-uncertain"): "owner",
    ("POST", "/admin/campaigns/{slug}/resend-uncertain"): "owner",
    ("GET", "/admin/login"): "public",
    ("POST", "/admin/login"): "public",
    ("GET", "/admin/setup/{token}"): "public",
    ("POST", "/admin/setup/{token}"): "public",
}


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


def staffed_newsletter(folder: Path, clock: FixedClock, *, send: bool = False) -> Newsletter:
    """The sample folder (the sample issue sent only with ``send``), an owner and a writer."""
    nl = make_newsletter(folder, clock=clock, send=send)
    for email, role in ((OWNER, "owner"), (WRITER, "writer")):
        add_user(nl.sessions, email, role, hash_password(PASSWORD), clock())
    return nl


@pytest.fixture
def newsletter(tmp_path: Path, clock: FixedClock) -> Newsletter:
    return staffed_newsletter(tmp_path / "clinic", clock)


@pytest.fixture
def app(newsletter: Newsletter) -> FastAPI:
    return create_app(newsletter)


async def log_in(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> httpx.Response:
    form = await client.get("/admin/login")
    return await client.post(
        "/admin/login",
        data={"email": email, "password": password, "csrf_token": csrf_from(form.text)},
    )


@asynccontextmanager
async def signed_in(app: FastAPI, email: str) -> AsyncIterator[httpx.AsyncClient]:
    async with web_client(app) as client:
        answer = await log_in(client, email)
        assert answer.status_code == 303 and answer.headers["location"] == "/admin"
        yield client


def _api_routes(routes: Iterable[Any]) -> Iterator[APIRoute]:
    # FastAPI (0.16x) keeps an included router as one entry; none here has a prefix.
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif (inner := getattr(route, "original_router", None)) is not None:
            yield from _api_routes(inner.routes)


def _admin_routes(app: FastAPI) -> set[tuple[str, str]]:
    return {
        (method, route.path)
        for route in _api_routes(app.routes)
        if route.path.startswith("/admin")
        for method in route.methods
    }


def _concrete(path: str) -> str:
    # {who}: the sample list's first subscriber (an action posted without its
    # confirmation only redirects to it, so nobody is removed or erased here).
    # {slug}: no such article, so no post here sends anything (tests/web/admin_campaigns/
    # sends for real).
    return path.replace("{token}", "x").replace("{who}", "1").replace("{slug}", "no-such-article")


# -- routes refuse whoever may not use them -----------------------------------------------


def test_every_admin_route_is_classified(app: FastAPI) -> None:
    assert _admin_routes(app) == set(ROUTES)
    assert {path for (_m, path), who in ROUTES.items() if who == "public"} == PUBLIC_ADMIN_PATHS


async def test_anonymous_requests_are_sent_to_the_login(app: FastAPI) -> None:
    async with web_client(app) as client:
        for (method, path), who in ROUTES.items():
            if who == "public":
                continue
            answer = await client.request(method, _concrete(path), data={"csrf_token": "x"})
            assert answer.status_code == 303, (method, path)
            assert answer.headers["location"].startswith("/admin/login"), (method, path)


async def test_a_writer_is_refused_the_owner_routes(app: FastAPI, newsletter: Newsletter) -> None:
    async with signed_in(app, WRITER) as writer, signed_in(app, OWNER) as owner:
        page = await writer.get("/admin")
        assert page.status_code == 200
        token = csrf_from(page.text)
        for (method, path), who in ROUTES.items():
            if who != "owner":
                continue
            refused = await writer.request(method, _concrete(path), data={"csrf_token": token})
            assert refused.status_code == 403, (method, path)
            allowed = await owner.request(
                method,
                _concrete(path),
                data={"csrf_token": csrf_from((await owner.get("/admin")).text)},
            )
            # Not refused: the route answers (it may find the dummy form or slug wrong).
            assert allowed.status_code in (200, 303, 400, 404, 409), (method, path)
            assert not allowed.headers.get("location", "").startswith("/admin/login")
        # The owner's last post was resume: the writer's pause never happened in between.
        assert not SchedulerStateStore(newsletter.sessions).status().paused
        # Owner-only parts of the queue page are absent for the writer.
        assert "Subscribers by state" not in page.text and "/admin/schedule/" not in page.text
        owner_page = await owner.get("/admin")
        assert "Subscribers by state" in owner_page.text
        assert 'action="/admin/schedule/pause"' in owner_page.text


async def test_a_tampered_or_foreign_session_cookie_is_refused(app: FastAPI) -> None:
    async with signed_in(app, WRITER) as client:
        cookie = client.cookies["nl_admin"]
        _payload, _, rest = cookie.partition(".")
        # Someone edits the signed payload to claim the owner's id (1): the signature fails.
        forged = "WzEsMF0" + "." + rest  # base64 of [1,0]
        assert forged != cookie
        for value in (forged, cookie[:-2] + ("AA" if cookie[-2:] != "AA" else "BB"), "garbage"):
            client.cookies.set("nl_admin", value)
            answer = await client.get("/admin/subscribers")
            assert answer.status_code == 303 and answer.headers["location"].startswith(
                "/admin/login"
            )


# -- CSRF ---------------------------------------------------------------------------------


async def test_posts_without_a_valid_csrf_token_change_nothing(
    app: FastAPI, newsletter: Newsletter
) -> None:
    async with signed_in(app, OWNER) as owner:
        for data in ({}, {"csrf_token": "forged"}):
            answer = await owner.post("/admin/schedule/pause", data=data)
            assert answer.status_code == 403
            assert not SchedulerStateStore(newsletter.sessions).status().paused
        token = csrf_from((await owner.get("/admin")).text)
        # A valid token from another origin (a cross-site form) is refused too.
        cross = await owner.post(
            "/admin/schedule/pause",
            data={"csrf_token": token},
            headers={"Origin": "https://evil.example"},
        )
        assert cross.status_code == 403
        assert not SchedulerStateStore(newsletter.sessions).status().paused
        ok = await owner.post("/admin/schedule/pause", data={"csrf_token": token})
        assert ok.status_code == 303
        assert SchedulerStateStore(newsletter.sessions).status().paused
        # Logging out needs the token as well.
        assert (await owner.post("/admin/logout", data={})).status_code == 403
        assert (await owner.get("/admin")).status_code == 200
    async with web_client(app) as anon:
        form = await anon.get("/admin/login")
        answer = await anon.post(
            "/admin/login", data={"email": OWNER, "password": PASSWORD, "csrf_token": "forged"}
        )
        assert form.status_code == 200 and answer.status_code == 400
        assert "nl_admin" not in anon.cookies


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


# -- first-run setup ----------------------------------------------------------------------


@pytest.fixture
def fresh(tmp_path: Path, clock: FixedClock) -> Newsletter:
    """A folder with no account yet."""
    return make_newsletter(tmp_path / "fresh", clock=clock, send=False)


async def _set_up(client: httpx.AsyncClient, link: str, email: str) -> httpx.Response:
    form = await client.get(link)
    assert form.status_code == 200, form.text
    return await client.post(
        link,
        data={
            "email": email,
            "password": PASSWORD,
            "password2": PASSWORD,
            "csrf_token": csrf_from(form.text),
        },
    )


async def test_the_setup_link_creates_the_first_owner_once(fresh: Newsletter) -> None:
    app = create_app(fresh)
    link = f"/admin/setup/{SetupLinks(SECRET, fresh.clock).issue()}"
    async with web_client(app) as client:
        created = await _set_up(client, link, "First@Clinic.example")
        assert created.status_code == 303 and created.headers["location"] == "/admin"
        page = await client.get("/admin")
        assert page.status_code == 200 and "Subscribers by state" in page.text  # an owner
    user = find_user(fresh.sessions, "first@clinic.example")
    assert user is not None and user.role == "owner"
    async with web_client(app) as someone_else:
        again = await someone_else.get(link)
        assert again.status_code == 410
        # Posting straight to it (a form kept open from before) creates nothing either.
        token = csrf_from((await someone_else.get("/admin/login")).text)
        late = await someone_else.post(
            link,
            data={
                "email": "second@clinic.example",
                "password": PASSWORD,
                "password2": PASSWORD,
                "csrf_token": token,
            },
        )
        assert late.status_code == 410
    # A second, fresh link is refused too: an account exists.
    async with web_client(app) as client:
        second = f"/admin/setup/{SetupLinks(SECRET, fresh.clock).issue()}"
        assert (await client.get(second)).status_code == 410
    assert count_users(fresh.sessions) == 1


async def test_the_setup_link_expires_after_an_hour(fresh: Newsletter, clock: FixedClock) -> None:
    app = create_app(fresh)
    link = f"/admin/setup/{SetupLinks(SECRET, fresh.clock).issue()}"
    async with web_client(app) as client:
        form = await client.get(link)
        assert form.status_code == 200
        clock.advance(minutes=61)
        expired = await client.get(link)
        assert expired.status_code == 400 and "expired" in expired.text
        posted = await client.post(
            link,
            data={
                "email": OWNER,
                "password": PASSWORD,
                "password2": PASSWORD,
                "csrf_token": csrf_from(form.text),
            },
        )
        assert posted.status_code == 400
    assert count_users(fresh.sessions) == 0


async def test_a_forged_setup_link_is_refused(fresh: Newsletter) -> None:
    other_key = SetupLinks("another-secret", fresh.clock).issue()
    async with web_client(create_app(fresh)) as client:
        for token in (other_key, "not-a-token"):
            assert (await client.get(f"/admin/setup/{token}")).status_code == 400
    assert count_users(fresh.sessions) == 0


# -- the queue page -----------------------------------------------------------------------


async def test_the_queue_page_lists_articles_in_send_order_with_their_problems(
    app: FastAPI, newsletter: Newsletter
) -> None:
    queue = newsletter.queue()
    assert len(queue) >= 2
    last = queue[-1]
    assert last.part is not None
    path = newsletter.settings.articles_path / f"{last.slug}.md"
    # A gap in the series: `check` reports it against this article, which stays queued.
    path.write_text(
        path.read_text(encoding="utf-8").replace(f"part: {last.part}", f"part: {last.part + 2}"),
        encoding="utf-8",
    )
    async with signed_in(app, WRITER) as client:
        page = (await client.get("/admin")).text
    positions = [page.index(f">{e.slug}<") for e in newsletter.queue()]
    assert len(positions) == len(queue) and positions == sorted(positions)
    problems = re.search(rf'aria-label="Problems in {re.escape(last.slug)}">(.*?)</ul>', page, re.S)
    assert problems is not None and "has no parts" in problems.group(1)
    assert page.count('class="problems"') == 1  # only beside the article it concerns
    assert "<script" not in page
    # Nothing on the page loads from anywhere (links to follow, like the clinic's site, may).
    assert not re.search(r"\ssrc=|url\(|@import|<link[^>]+stylesheet", page)
