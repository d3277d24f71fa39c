"""Small helpers shared by tests: a copy of the sample folder and a fixed clock."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_SLUG = "hip-pain-massage-therapy"


def copy_sample_folder(target: Path) -> Path:
    """Copy the repository's sample newsletter folder; return its settings file."""
    target.mkdir(parents=True, exist_ok=True)
    for name in ("newsletter.toml", "sample-subscribers.csv"):
        shutil.copyfile(ROOT / name, target / name)
    for folder in ("articles", "templates"):
        shutil.copytree(ROOT / folder, target / folder)
    return target / "newsletter.toml"


class FixedClock:
    """A clock tests move by hand, so nothing ever sleeps."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 11, 25, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        """Move the clock forward."""
        self.now += timedelta(**delta)


Clock = Callable[[], datetime]
