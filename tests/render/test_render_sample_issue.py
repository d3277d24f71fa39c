"""The sample issue: its golden files, and what its HTML and text parts must carry.

The golden files live in tests/golden/; regenerate them with UPDATE_GOLDEN=1.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from pipeline.config import Settings
from pipeline.content.articles import Article
from pipeline.render import PLACEHOLDERS, TEXT_WIDTH, RenderedIssue, render_issue
from tests.render.render_helpers import ARCHIVE_URL, NEXT_URL, PREVIOUS_URL, SAMPLE_NAV

GOLDEN = Path(__file__).resolve().parents[1] / "golden"


# -- the sample issue ----------------------------------------------------------------


@pytest.mark.parametrize("suffix", ["html", "txt"])
def test_sample_issue_matches_golden(issue: RenderedIssue, suffix: str) -> None:
    rendered = issue.html if suffix == "html" else issue.text
    golden = GOLDEN / f"hip-pain-massage-therapy.{suffix}"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        golden.parent.mkdir(exist_ok=True)
        golden.write_text(rendered, encoding="utf-8")
    assert golden.exists(), (
        f"{golden} missing: run UPDATE_GOLDEN=1 pytest tests/render/test_render_sample_issue.py"
    )
    assert rendered == golden.read_text(encoding="utf-8"), (
        f"{golden.name} differs; if the change is intended, regenerate with UPDATE_GOLDEN=1"
    )


def test_render_is_deterministic(sample: Article, settings: Settings, issue: RenderedIssue) -> None:
    again = render_issue(sample, SAMPLE_NAV, settings, archive_url=ARCHIVE_URL)
    assert again == issue


def test_sample_subject_and_preheader(issue: RenderedIssue, sample: Article) -> None:
    assert issue.slug == "hip-pain-massage-therapy"
    assert issue.subject == "Hip Pain & How Massage Therapy Helps"
    assert issue.preheader == sample.summary
    assert sample.summary is not None
    assert sample.summary in issue.html  # the hidden preview line


def test_html_carries_everything_an_email_must(issue: RenderedIssue) -> None:
    html = issue.html
    assert "<h1" in html and "Hip Pain &amp; How Massage Therapy Helps</h1>" in html
    assert "Hi %%first_name%%," in html
    assert "Part 2 of 3 in Massage and Wellbeing" in html
    assert f'href="{PREVIOUS_URL}"' in html and "← Previous: Massage &amp; Mental Health" in html
    assert f'href="{NEXT_URL}"' in html
    assert "Coming next: Massage Guns, Are they worth it?" in html and "Tue 8 Dec" in html
    assert "About the author" in html and "Certified Massage Therapist" in html
    assert "12 Example Street, Newtown NSW 2042, Australia" in html
    assert f'href="{ARCHIVE_URL}"' in html and "Read this online" in html
    assert "You're receiving this because you subscribed to CloudForm Massage news." in html
    assert 'href="https://www.cloudformmassage.com.au/book"' in html and "Book a massage" in html
    # no logo configured: the clinic's name is real text, not an image
    assert ">CloudForm Massage</p>" in html


def test_placeholders_survive_mjml_and_inlining_including_href(issue: RenderedIssue) -> None:
    assert 'href="%%unsubscribe_url%%"' in issue.html
    assert ">Unsubscribe</a>" in issue.html
    assert "Hi %%first_name%%," in issue.text
    assert "Unsubscribe: %%unsubscribe_url%%" in issue.text
    for name in PLACEHOLDERS:
        assert f"%%{name}%%" in issue.html and f"%%{name}%%" in issue.text
    assert "%25%25" not in issue.html  # never URL-encoded


def test_media_queries_and_color_scheme_survive_inlining(issue: RenderedIssue) -> None:
    html = issue.html
    styles = "".join(re.findall(r"<style[^>]*>(.*?)</style>", html, flags=re.S))
    assert "@media (prefers-color-scheme: dark)" in styles
    assert "@media only screen and (max-width: 480px)" in styles
    assert '<meta name="color-scheme" content="light dark">' in html
    assert '<meta name="supported-color-schemes" content="light dark">' in html
    # body typography was inlined, so clients without <style> still get it
    assert re.search(r'<p style="[^"]*margin: 0 0 18px', html)


def test_no_remote_stylesheet_or_web_font(issue: RenderedIssue) -> None:
    assert "<link" not in issue.html
    assert "@import" not in issue.html
    assert "fonts.googleapis.com" not in issue.html


def test_layout_is_600px_and_phone_ready(issue: RenderedIssue) -> None:
    assert "max-width:600px" in issue.html
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in issue.html


def test_text_part_has_links_address_and_unsubscribe(issue: RenderedIssue) -> None:
    text = issue.text
    assert f"Previous: Massage & Mental Health\n  {PREVIOUS_URL}" in text
    assert f"Coming next: Massage Guns, Are they worth it? — Tue 8 Dec\n  {NEXT_URL}" in text
    assert "Unsubscribe: %%unsubscribe_url%%" in text
    assert f"Read online: {ARCHIVE_URL}" in text
    assert "12 Example Street, Newtown NSW 2042, Australia" in text
    assert "What causes hip pain?\n---------------------" in text
    assert not re.search(r"</?[a-z]+[ >]", text)  # no markup leaks into the text part
    assert "\n\n\n" not in text


def test_text_part_is_wrapped_without_breaking_urls(issue: RenderedIssue) -> None:
    for line in issue.text.splitlines():
        assert len(line) <= TEXT_WIDTH or "://" in line, line


def test_text_and_html_follow_the_same_order(issue: RenderedIssue) -> None:
    markers = ["Hi %%first_name%%", "Hip Pain", "Book a massage", "Part 2 of 3", "Previous:",
               "Coming next:", "Alan", "12 Example Street", "Unsubscribe"]  # fmt: skip
    # the visible content starts after the wrapper div (its aria-label repeats the title)
    for part in (issue.html[issue.html.index('role="article"') :], issue.text):
        positions = [part.index(m) for m in markers]
        assert positions == sorted(positions)
