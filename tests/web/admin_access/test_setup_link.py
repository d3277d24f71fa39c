"""The first-run setup link: it creates the first owner once, expires after an hour, and a
forged one is refused."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from pipeline.accounts import SetupLinks
from pipeline.newsletter import Newsletter
from pipeline.store.users import count_users, find_user
from pipeline.web.app import create_app
from tests.helpers import FixedClock
from tests.web.admin_helpers import OWNER, PASSWORD
from tests.web.helpers import SECRET, csrf_from, make_newsletter, web_client

pytestmark = pytest.mark.anyio

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
