"""Fixtures the Schedule and Campaigns tests share: the sample folder with nothing sent."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.newsletter import Newsletter
from tests.helpers import FixedClock
from tests.web.admin_helpers import staffed_newsletter


@pytest.fixture
def newsletter(tmp_path: Path, clock: FixedClock) -> Newsletter:
    """The sample folder with nothing sent yet, an owner and a writer."""
    return staffed_newsletter(tmp_path / "clinic", clock)
