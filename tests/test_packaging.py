"""The package carries the default design and sample; they must not drift."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import ROOT

DEFAULTS = ROOT / "pipeline" / "defaults"
SHARED = [
    "newsletter.toml",
    "sample-subscribers.csv",
    "templates/newsletter.mjml",
    "templates/newsletter.txt",
    "articles/hip-pain-massage-therapy.md",
    "articles/massage-and-mental-health.md",
    "articles/massage-guns-are-they-worth-it.md",
]


@pytest.mark.parametrize("name", SHARED)
def test_package_copy_matches_the_repository(name: str) -> None:
    assert (DEFAULTS / name).read_bytes() == (ROOT / name).read_bytes(), (
        f"pipeline/defaults/{name} differs from {name}: copy the edited one over the other"
    )


def test_every_default_file_is_listed() -> None:
    found = {
        str(path.relative_to(DEFAULTS))
        for path in DEFAULTS.rglob("*")
        if path.is_file() and path.suffix != ".py" and "__pycache__" not in path.parts
    }
    assert found == set(SHARED)


def test_seed_is_the_sample_issue() -> None:
    text = (ROOT / "articles" / "hip-pain-massage-therapy.md").read_text(encoding="utf-8")
    assert "part: 2" in text
    assert Path(ROOT / "newsletter.toml").read_text(encoding="utf-8").count("[clinic]") == 1
