"""Addresses and helpers the subscribers section tests share (fixtures: conftest.py)."""

from __future__ import annotations

import httpx

from pipeline.newsletter import Newsletter
from tests.web.helpers import csrf_from, subscriber

PRIYA = "priya.sharma@example.com"
SAM = "sam.nguyen@example.com"


def id_of(newsletter: Newsletter, address: str) -> int:
    return subscriber(newsletter, address).id


async def token(client: httpx.AsyncClient, path: str = "/admin/subscribers") -> str:
    return csrf_from((await client.get(path)).text)


async def upload(
    client: httpx.AsyncClient, content: bytes, name: str = "clients.csv", csrf: str | None = None
) -> httpx.Response:
    return await client.post(
        "/admin/subscribers/import",
        data={"csrf_token": csrf if csrf is not None else await token(client)},
        files={"file": (name, content, "text/csv")},
    )
