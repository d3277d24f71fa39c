"""Fixtures the SMTP transport tests share: the sample settings (with an SMTP password)
and a sleep that only records its waits."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pipeline.config import Settings, load_settings
from tests.helpers import ROOT
from tests.sending.smtp.helpers import PASSWORD, FakeSleep


@pytest.fixture
def base_settings(tmp_path: Path) -> Settings:
    shutil.copyfile(ROOT / "newsletter.toml", tmp_path / "newsletter.toml")
    return load_settings(
        tmp_path / "newsletter.toml",
        environ={"NEWSLETTER_SECRET_KEY": "t", "NEWSLETTER_SMTP_PASSWORD": PASSWORD},
    )


@pytest.fixture
def sleep() -> FakeSleep:
    return FakeSleep()
