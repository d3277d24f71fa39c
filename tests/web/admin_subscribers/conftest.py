"""Fixtures the subscribers section tests share: the sample folder with its issue sent,
and a client signed in as the owner."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from pipeline.newsletter import Newsletter
from tests.helpers import FixedClock
from tests.web.admin_helpers import OWNER, signed_in, staffed_newsletter


@pytest.fixture
def newsletter(tmp_path: Path, clock: FixedClock) -> Newsletter:
    """The sample folder (its subscribers imported, the sample issue sent) with two accounts."""
    return staffed_newsletter(tmp_path / "clinic", clock, send=True)


@pytest.fixture
async def owner(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with signed_in(app, OWNER) as client:
        yield client
