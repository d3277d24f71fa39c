"""Rendering an article's subject (one header line, always) and preheader (the preview text)."""

from __future__ import annotations

from pipeline.config import Settings
from tests.render.render_helpers import _article, _render

# -- subject and preheader -------------------------------------------------------------------


def test_subject_cannot_inject_headers(settings: Settings) -> None:
    issue = _render(settings, _article(subject="Hello\r\nBcc: everyone@example.com\tnow"))
    assert issue.subject == "Hello Bcc: everyone@example.com now"


def test_preheader_falls_back_to_the_start_of_the_body(settings: Settings) -> None:
    body = "First paragraph " + "with many words " * 30 + "\n\nSecond."
    issue = _render(settings, _article(body_markdown=body))
    assert issue.preheader.startswith("First paragraph with many words")
    assert issue.preheader.endswith("…")
    assert len(issue.preheader) <= 141
    assert "\n" not in issue.preheader
