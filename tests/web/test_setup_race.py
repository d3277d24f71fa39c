"""Two posts of one first-run setup link at once, through the web app: one owner, and the
other person gets a clear "this link was already used" page (SQLite and PostgreSQL).

The race is held open in the store as in tests/store/test_first_owner_race.py:
the first post's owner is inserted and not committed until the second post has
passed the route's own checks (no account yet) and reached the store.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from starlette.testclient import TestClient

from pipeline.accounts import SetupLinks
from pipeline.store.users import count_users, list_users
from pipeline.web.app import create_app
from tests.helpers import FixedClock
from tests.store.test_first_owner_race import Race
from tests.web.helpers import BASE_URL, SECRET, csrf_from, make_newsletter

PASSWORD = "correct horse battery"


def test_two_posts_of_one_setup_link_make_one_owner(tmp_path: Path, database_url: str) -> None:
    clock = FixedClock()
    newsletter = make_newsletter(
        tmp_path / "fresh",
        clock=clock,
        send=False,
        environ={"NEWSLETTER_DATABASE_URL": database_url},
    )
    app = create_app(newsletter)
    link = f"/admin/setup/{SetupLinks(SECRET, newsletter.clock).issue()}"
    # Two browsers (their own cookies and CSRF tokens) opened the same link.
    tabs = [TestClient(app, base_url=BASE_URL), TestClient(app, base_url=BASE_URL)]
    forms = [tab.get(link) for tab in tabs]
    assert [form.status_code for form in forms] == [200, 200]

    def post(n: int, email: str) -> Callable[[], Any]:
        data = {
            "email": email,
            "password": PASSWORD,
            "password2": PASSWORD,
            "csrf_token": csrf_from(forms[n].text),
        }
        return lambda: tabs[n].post(link, data=data, follow_redirects=False)

    race = Race(newsletter.engine, "ann@clinic.example")
    try:
        race.run(post(0, "ann@clinic.example"), post(1, "bob@clinic.example"))
    finally:
        race.close()
        for tab in tabs:
            tab.close()
    won, lost = race.results["first"], race.results["second"]
    assert won.status_code == 303 and won.headers["location"] == "/admin"
    assert lost.status_code == 410
    assert "This setup link was already used" in lost.text
    assert 'href="/admin/login"' in lost.text
    assert count_users(newsletter.sessions) == 1
    assert [(u.email, u.role) for u in list_users(newsletter.sessions)] == [
        ("ann@clinic.example", "owner")
    ]
    newsletter.close()
