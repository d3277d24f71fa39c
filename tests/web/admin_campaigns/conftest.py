"""Fixtures the Schedule and Campaigns tests share: the sample folder with nothing sent."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi import FastAPI

from pipeline.newsletter import Newsletter
from pipeline.web.app import create_app
from tests.helpers import FixedClock
from tests.web.test_admin import staffed_newsletter


@pytest.fixture
def newsletter(tmp_path: Path, clock: FixedClock) -> Newsletter:
    """The sample folder with nothing sent yet, an owner and a writer."""
    return staffed_newsletter(tmp_path / "clinic", clock)


@pytest.fixture
def app(newsletter: Newsletter) -> FastAPI:
    return create_app(newsletter)
