"""Fixtures the delivery-fault tests share: the loopback SendGrid and a 2500-reader clinic."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.sendgrid_server import (
    sendgrid_server_fixture,  # noqa: F401 - registers the fixture
)
from tests.sending.delivery_faults.helpers import _folder


@pytest.fixture
def clinic(tmp_path: Path) -> Iterator[tuple[Path, list[str]]]:
    yield _folder(tmp_path, 2500)
