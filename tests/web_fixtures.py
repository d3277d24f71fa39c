"""Fixtures shared by the web app's tests: a fixed clock, the sample newsletter, the app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from pipeline.newsletter import Newsletter
from pipeline.web.app import create_app
from tests.helpers import FixedClock
from tests.web.helpers import make_newsletter, web_client


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


@pytest.fixture
def newsletter(tmp_path: Path, clock: FixedClock) -> Newsletter:
    """The sample folder, subscribers imported, the sample issue sent (a test may override)."""
    return make_newsletter(tmp_path / "clinic", clock=clock)


@pytest.fixture
def app(newsletter: Newsletter) -> FastAPI:
    return create_app(newsletter)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with web_client(app) as c:
        yield c
