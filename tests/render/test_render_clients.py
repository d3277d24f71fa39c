"""The design holds in Outlook for Windows and in dark mode (issue 17's rendering fixes).

Checked against the rendered sample (the goldens) and small articles: every
article image has a pixel width, lists are indented with margin (Outlook pads
only table cells), and a logo keeps a light background in dark mode.
"""

from __future__ import annotations

import re
from pathlib import Path

from pipeline.config import load_settings
from pipeline.newsletter import Newsletter
from pipeline.render import sized_images
from tests.helpers import copy_sample_folder

GOLDEN_HTML = Path(__file__).resolve().parents[1] / "golden" / "hip-pain-massage-therapy.html"


def test_images_get_a_pixel_width_or_keep_the_authors_smaller_one() -> None:
    html = (
        '<p><img src="https://x.test/a.jpg" alt="a"></p>'
        '<img src="https://x.test/b.jpg" alt="b" width="200" height="100">'
        '<img src="https://x.test/c.jpg" alt="c" width="1200" height="800">'
    )
    assert sized_images(html) == (
        '<p><img src="https://x.test/a.jpg" alt="a" width="536"></p>'
        '<img src="https://x.test/b.jpg" alt="b" width="200" height="100">'
        '<img src="https://x.test/c.jpg" alt="c" width="536">'
    )


def open_sample(tmp_path: Path, extra_settings: str = "") -> Newsletter:
    config = copy_sample_folder(tmp_path / "clinic")
    if extra_settings:
        text = config.read_text(encoding="utf-8")
        config.write_text(text.replace("[clinic]\n", "[clinic]\n" + extra_settings), "utf-8")
    return Newsletter(load_settings(config, environ={"NEWSLETTER_SECRET_KEY": "t"}))


def test_an_article_image_renders_with_width_and_fluid_style(tmp_path: Path) -> None:
    newsletter = open_sample(tmp_path)
    (newsletter.settings.articles_path / "pictured.md").write_text(
        '---\ntitle: "Pictured"\n---\n![A foam roller](https://x.test/roller.jpg)\n', "utf-8"
    )
    html = newsletter.render("pictured").html
    [img] = re.findall(r"<img[^>]*roller\.jpg[^>]*>", html)
    assert 'width="536"' in img
    assert "max-width: 100%" in img and "height: auto" in img


def test_lists_are_indented_with_margin_not_padding() -> None:
    golden = GOLDEN_HTML.read_text(encoding="utf-8")
    assert '<ol style="margin: 0 0 18px 24px;padding: 0;">' in golden
    assert "padding: 0 0 0 24px" not in golden


def test_the_logo_keeps_a_light_background_in_dark_mode(tmp_path: Path) -> None:
    newsletter = open_sample(tmp_path, 'logo_url = "https://x.test/logo.png"\n')
    html = newsletter.render("hip-pain-massage-therapy").html
    dark = html[html.index("@media (prefers-color-scheme: dark)") :]
    assert ".logo img { background-color: #ffffff !important;" in dark
    assert "[data-ogsb] .logo img { background-color: #ffffff !important; }" in html
    assert re.search(r'<td[^>]*class="logo"', html)
