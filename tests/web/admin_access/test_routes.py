"""Every dashboard route is classified (public, writer, owner) and refuses whoever may not use
it: anonymous requests go to the login, a writer gets 403 on the owner's routes, and a
tampered or foreign session cookie counts for nothing."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute

from pipeline.newsletter import Newsletter
from pipeline.store.scheduler_state import SchedulerStateStore
from pipeline.web.admin import PUBLIC_ADMIN_PATHS
from tests.web.admin_helpers import OWNER, ROUTES, WRITER, signed_in
from tests.web.helpers import csrf_from, web_client

pytestmark = pytest.mark.anyio


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
