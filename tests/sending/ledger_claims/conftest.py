"""The ``newsletter`` these tests share: the sample folder on the parametrized database."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.newsletter import Newsletter
from tests.sending.ledger_claims.helpers import _newsletter


@pytest.fixture
def newsletter(tmp_path: Path, database_url: str) -> Newsletter:
    """The sample folder (5 subscribers), its clock at the real time (children claim by it)."""
    return _newsletter(tmp_path, database_url)
