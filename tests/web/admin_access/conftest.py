"""Fixtures the dashboard foundation tests share: the sample folder with nothing sent, an
owner and a writer (``clock`` and ``app`` are tests/web_fixtures.py's)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.newsletter import Newsletter
from tests.helpers import FixedClock
from tests.web.admin_helpers import staffed_newsletter


@pytest.fixture
def newsletter(tmp_path: Path, clock: FixedClock) -> Newsletter:
    return staffed_newsletter(tmp_path / "clinic", clock)
