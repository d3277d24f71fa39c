"""Golden files for the welcome email (HTML and text), as a new subscriber reads it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pipeline import links
from pipeline.config import load_settings
from pipeline.newsletter import Newsletter
from pipeline.render import Personalizer
from pipeline.render.welcome import render_welcome, welcome_series
from tests.helpers import FixedClock, copy_sample_folder

GOLDEN = Path(__file__).resolve().parents[1] / "golden"


@pytest.mark.parametrize("part", ["html", "txt"])
def test_welcome_email_matches_golden(tmp_path: Path, part: str) -> None:
    config = copy_sample_folder(tmp_path / "clinic", welcome=True)
    settings = load_settings(config, environ={"NEWSLETTER_SECRET_KEY": "golden"})
    newsletter = Newsletter(settings, clock=FixedClock())
    series = welcome_series(settings, newsletter.articles().articles)
    assert [s.title for s in series] == ["Massage and Wellbeing"]
    issue = render_welcome(
        settings, series, archive_url=links.archive_index_url(settings.web.base_url)
    )
    values = newsletter.sample_recipient("subscriber@example.com").values()
    personal = Personalizer(issue)
    got = personal.html(values) if part == "html" else personal.text(values)
    assert "Massage and Wellbeing" in got and "%%" not in got
    golden = GOLDEN / f"welcome.{part}"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        golden.write_text(got, encoding="utf-8")
    assert got == golden.read_text(encoding="utf-8"), (
        f"{golden.name} differs; if intended, regenerate with UPDATE_GOLDEN=1"
    )
