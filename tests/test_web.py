"""The archive and one-click unsubscribe, through the real ASGI app."""

from __future__ import annotations

import email
from email import policy
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from pipeline.config import load_settings
from pipeline.service import Newsletter
from pipeline.subscribers import import_csv, iter_subscribers
from pipeline.web.app import create_app
from tests.helpers import SAMPLE_SLUG, FixedClock, copy_sample_folder


@pytest.fixture
def newsletter(tmp_path: Path) -> Newsletter:
    config = copy_sample_folder(tmp_path / "clinic")
    settings = load_settings(config, environ={"NEWSLETTER_SECRET_KEY": "web-secret"})
    nl = Newsletter(settings, clock=FixedClock())
    import_csv(nl.sessions, tmp_path / "clinic" / "sample-subscribers.csv")
    nl.send(SAMPLE_SLUG)
    return nl


@pytest.fixture
def client(newsletter: Newsletter) -> TestClient:
    return TestClient(create_app(newsletter), base_url="http://127.0.0.1:8000")


def _unsubscribe_url(newsletter: Newsletter, address: str) -> str:
    folder = newsletter.settings.outbox_path / SAMPLE_SLUG
    [path] = [p for p in folder.glob("*.eml") if address in p.name]
    msg = email.message_from_bytes(path.read_bytes(), policy=policy.default)
    return str(msg["List-Unsubscribe"]).strip("<>")


def _status(newsletter: Newsletter, address: str) -> str:
    return {r.email: str(r.status) for r in iter_subscribers(newsletter.sessions)}[address]


def test_one_click_post_unsubscribes_at_once(newsletter: Newsletter, client: TestClient) -> None:
    url = _unsubscribe_url(newsletter, "sam.nguyen@example.com")
    response = client.post(url, data={"List-Unsubscribe": "One-Click"}, follow_redirects=False)
    assert response.status_code == 200
    assert _status(newsletter, "sam.nguyen@example.com") == "unsubscribed"
    assert _status(newsletter, "priya.sharma@example.com") == "active"


def test_get_only_shows_a_button(newsletter: Newsletter, client: TestClient) -> None:
    url = _unsubscribe_url(newsletter, "priya.sharma@example.com")
    response = client.get(url)
    assert response.status_code == 200
    assert '<form method="post"' in response.text
    assert _status(newsletter, "priya.sharma@example.com") == "active"
    assert response.headers["X-Frame-Options"] == "DENY"


def test_tampered_token_gets_a_friendly_400(client: TestClient) -> None:
    response = client.post("/unsubscribe/WzEsImFiYyJd.tampered.sig")
    assert response.status_code == 400
    assert "isn't valid" in response.text
    assert "Traceback" not in response.text


def test_archive_links_resolve(newsletter: Newsletter, client: TestClient) -> None:
    sent = client.get(f"/archive/{SAMPLE_SLUG}")
    assert sent.status_code == 200
    assert "Hip Pain" in sent.text and "%%" not in sent.text
    assert "Hi there," in sent.text  # nobody's name in the public copy
    assert "/unsubscribe/" not in sent.text.replace('/unsubscribe"', "")
    for neighbour in ("massage-and-mental-health", "massage-guns-are-they-worth-it"):
        page = client.get(f"/archive/{neighbour}")
        assert page.status_code == 200
        assert "Coming soon" in page.text
    index = client.get("/archive")
    assert SAMPLE_SLUG in index.text
    assert client.get("/archive/no-such-thing").status_code == 404
    assert client.get("/unsubscribe").status_code == 200


def test_drafts_are_not_found(newsletter: Newsletter, client: TestClient) -> None:
    (newsletter.settings.articles_path / "secret.md").write_text(
        "---\ntitle: Secret\nstatus: draft\n---\nBody\n", encoding="utf-8"
    )
    assert client.get("/archive/secret").status_code == 404
