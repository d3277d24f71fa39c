"""The dashboard's posts need the form token (CSRF) from our own origin: the pause button,
logging out and logging in change nothing without it."""

from __future__ import annotations

import pytest
from fastapi import FastAPI

from pipeline.newsletter import Newsletter
from pipeline.store.scheduler_state import SchedulerStateStore
from tests.web.admin_helpers import OWNER, PASSWORD, signed_in
from tests.web.helpers import csrf_from, web_client

pytestmark = pytest.mark.anyio

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
