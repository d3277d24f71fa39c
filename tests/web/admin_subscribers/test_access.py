"""Who may use the subscribers section: a writer gets a 403, an anonymous visitor the login."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from pipeline.newsletter import Newsletter
from tests.web.admin_helpers import WRITER, signed_in
from tests.web.admin_subscribers.helpers import SAM, id_of, token
from tests.web.helpers import status_of

pytestmark = pytest.mark.anyio

#: Every route of the section, as (method, path) with a subscriber's id filled in.
SECTION = (
    ("GET", "/admin/subscribers"),
    ("GET", "/admin/subscribers/{id}"),
    ("GET", "/admin/subscribers/{id}/remove"),
    ("POST", "/admin/subscribers/{id}/remove"),
    ("GET", "/admin/subscribers/{id}/forget"),
    ("POST", "/admin/subscribers/{id}/forget"),
    ("GET", "/admin/subscribers/import"),
    ("POST", "/admin/subscribers/import"),
    ("GET", "/admin/subscribers/export.csv"),
)


# -- who may ------------------------------------------------------------------------------


async def test_a_writer_gets_a_clear_403_on_every_page_and_action(
    app: FastAPI, newsletter: Newsletter
) -> None:
    sam = id_of(newsletter, SAM)
    async with signed_in(app, WRITER) as writer:
        csrf = await token(writer, "/admin")
        for method, path in SECTION:
            answer = await writer.request(
                method, path.format(id=sam), data={"csrf_token": csrf, "email": SAM}
            )
            assert answer.status_code == 403, (method, path)
            assert "Only an owner can do that" in answer.text
    assert status_of(newsletter, SAM) == "active"
    async with signed_in(app, WRITER) as writer:
        queue = (await writer.get("/admin")).text
        assert 'href="/admin/subscribers"' not in queue  # no link to what is refused


async def test_anonymous_requests_go_to_the_login(app: FastAPI, newsletter: Newsletter) -> None:
    sam = id_of(newsletter, SAM)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:8000"
    ) as anon:
        for method, path in SECTION:
            answer = await anon.request(method, path.format(id=sam), data={"email": SAM})
            assert answer.status_code == 303, (method, path)
            assert answer.headers["location"].startswith("/admin/login")
    assert status_of(newsletter, SAM) == "active"
