"""Fixtures of the webhook tests: the sample newsletter with SendGrid's webhook key set."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.newsletter import Newsletter
from tests.events.webhook_helpers import webhook_newsletter
from tests.helpers import FixedClock


@pytest.fixture
def newsletter(tmp_path: Path, clock: FixedClock) -> Newsletter:
    """tests/web_fixtures.py's sample newsletter, with SendGrid's webhook public key set."""
    return webhook_newsletter(tmp_path / "clinic", clock)
