"""What the dashboard's tests share: the two accounts and their password, the sample folder
with them in it, logging in, and the table of every dashboard route and who may use it.

Used by tests/web/admin_access/ (which checks the table is complete), admin_campaigns/,
admin_subscribers/, the article and queue-move tests and the browser tests.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from fastapi import FastAPI

from pipeline.accounts import hash_password
from pipeline.newsletter import Newsletter
from pipeline.store.users import add_user
from tests.helpers import FixedClock
from tests.web.helpers import csrf_from, make_newsletter, web_client

OWNER = "owner@clinic.example"
WRITER = "writer@clinic.example"
PASSWORD = "correct horse battery"

#: Every dashboard route and who may use it. A new route must be added here, so the tests
#: in tests/web/admin_access/ cover it (test_every_admin_route_is_classified fails otherwise).
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


def staffed_newsletter(folder: Path, clock: FixedClock, *, send: bool = False) -> Newsletter:
    """The sample folder (the sample issue sent only with ``send``), an owner and a writer."""
    nl = make_newsletter(folder, clock=clock, send=send)
    for email, role in ((OWNER, "owner"), (WRITER, "writer")):
        add_user(nl.sessions, email, role, hash_password(PASSWORD), clock())
    return nl


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
