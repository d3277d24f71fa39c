"""X-Forwarded-For is believed only from trusted proxies, and only a valid IP is ever stored
as the consent IP; ``check`` refuses a trusted proxy that is not an address."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from pipeline.cli import main
from pipeline.newsletter import Newsletter
from pipeline.web.app import create_app
from pipeline.web.security import client_ip
from pipeline.web.server import server_config
from tests.helpers import FixedClock
from tests.web.hardening.helpers import HOSTILE, _web_settings
from tests.web.helpers import (
    BASE_URL,
    NEW,
    confirm_link,
    csrf_from,
    make_newsletter,
    subscriber,
)

pytestmark = pytest.mark.anyio

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
