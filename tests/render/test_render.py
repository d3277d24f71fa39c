"""Rendering: the sample issue's golden files, safety of article HTML, placeholders, merge."""

from __future__ import annotations

import dataclasses
import os
import re
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from pipeline.config import AuthorSettings, Settings, load_settings
from pipeline.content.articles import Article, read_article
from pipeline.content.series import SeriesLink, SeriesNav
from pipeline.errors import PipelineError, TemplateError
from pipeline.render import (
    PLACEHOLDERS,
    TEXT_WIDTH,
    Personalization,
    Personalizer,
    RenderedIssue,
    Theme,
    contrast,
    markdown_to_html,
    render_issue,
    series_title,
)

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).resolve().parents[1] / "golden"
SYDNEY = ZoneInfo("Australia/Sydney")
BASE = "http://127.0.0.1:8000"
ARCHIVE_URL = f"{BASE}/archive/hip-pain-massage-therapy"
PREVIOUS_URL = f"{BASE}/archive/massage-and-mental-health"
NEXT_URL = f"{BASE}/archive/massage-guns-are-they-worth-it"

SAMPLE_NAV = SeriesNav(
    series="massage-and-wellbeing",
    part=2,
    position=2,
    total=3,
    previous=SeriesLink("massage-and-mental-health", "Massage & Mental Health", PREVIOUS_URL, True),
    next=SeriesLink(
        "massage-guns-are-they-worth-it",
        "Massage Guns, Are they worth it?",
        NEXT_URL,
        False,
        planned_at=datetime(2026, 12, 8, 9, 0, tzinfo=SYDNEY),
    ),
)


@pytest.fixture(scope="module")
def settings() -> Settings:
    return load_settings(ROOT / "newsletter.toml", environ={})


@pytest.fixture(scope="module")
def sample() -> Article:
    return read_article(ROOT / "articles" / "hip-pain-massage-therapy.md", SYDNEY)


@pytest.fixture(scope="module")
def issue(sample: Article, settings: Settings) -> RenderedIssue:
    return render_issue(sample, SAMPLE_NAV, settings, archive_url=ARCHIVE_URL)


def _article(**changes: object) -> Article:
    base = Article(
        slug="plain",
        title="Plain Article",
        path=Path("plain.md"),
        body_markdown="Some **words** and a [link](https://example.com/x).",
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def _render(
    settings: Settings, article: Article | None = None, nav: SeriesNav | None = None
) -> RenderedIssue:
    return render_issue(article or _article(), nav, settings, archive_url=f"{BASE}/archive/plain")


# -- the sample issue ----------------------------------------------------------------


@pytest.mark.parametrize("suffix", ["html", "txt"])
def test_sample_issue_matches_golden(issue: RenderedIssue, suffix: str) -> None:
    rendered = issue.html if suffix == "html" else issue.text
    golden = GOLDEN / f"hip-pain-massage-therapy.{suffix}"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        golden.parent.mkdir(exist_ok=True)
        golden.write_text(rendered, encoding="utf-8")
    assert golden.exists(), (
        f"{golden} missing: run UPDATE_GOLDEN=1 pytest tests/render/test_render.py"
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


# -- series navigation and author card -----------------------------------------------------


def test_article_without_series_has_no_nav_block(settings: Settings) -> None:
    issue = _render(settings)
    for part in (issue.html, issue.text):
        assert "Part " not in part
        assert "Previous:" not in part and "Next:" not in part


def test_sent_next_is_a_plain_next_link(settings: Settings) -> None:
    assert SAMPLE_NAV.next is not None
    nav = dataclasses.replace(SAMPLE_NAV, next=dataclasses.replace(SAMPLE_NAV.next, sent=True))
    issue = _render(settings, nav=nav)
    assert "Next: Massage Guns, Are they worth it? →" in issue.html
    assert "Coming next" not in issue.html and "Tue 8 Dec" not in issue.html
    assert f"Next: Massage Guns, Are they worth it?\n  {NEXT_URL}" in issue.text


def test_unsent_next_without_planned_date_still_links(settings: Settings) -> None:
    assert SAMPLE_NAV.next is not None
    nav = dataclasses.replace(
        SAMPLE_NAV,
        previous=None,
        next=dataclasses.replace(SAMPLE_NAV.next, planned_at=None),
        position=1,
    )
    issue = _render(settings, nav=nav)
    assert "Part 1 of 3" in issue.html
    assert f'href="{NEXT_URL}"' in issue.html and "Coming next:" in issue.html
    assert "—" not in issue.text.split("Coming next:")[1].splitlines()[0]
    assert "Previous" not in issue.html


def test_planned_date_is_shown_in_the_clinic_timezone(settings: Settings) -> None:
    assert SAMPLE_NAV.next is not None
    # 22:00 UTC on Monday 7 Dec is 09:00 Tuesday 8 Dec in Sydney
    utc = datetime(2026, 12, 7, 22, 0, tzinfo=ZoneInfo("UTC"))
    nav = dataclasses.replace(SAMPLE_NAV, next=dataclasses.replace(SAMPLE_NAV.next, planned_at=utc))
    assert "Tue 8 Dec" in _render(settings, nav=nav).text


def test_author_card_only_when_configured(settings: Settings) -> None:
    assert "About the author" in _render(settings, _article(author="Alan")).html
    for article in (_article(author="Someone Else"), _article(author=None)):
        issue = _render(settings, article)
        assert "About the author" not in issue.html and "About the author" not in issue.text


def test_author_photo_has_the_name_as_alt(settings: Settings) -> None:
    authors = {"Alan": AuthorSettings(bio="Bio here.", photo_url="https://img.example/alan.jpg")}
    issue = _render(settings.model_copy(update={"authors": authors}), _article(author="Alan"))
    assert re.search(r'<img[^>]*src="https://img.example/alan.jpg"[^>]*alt="Alan"', issue.html)


def test_logo_replaces_the_text_name_and_has_alt(settings: Settings) -> None:
    clinic = settings.clinic.model_copy(update={"logo_url": "https://img.example/logo.png"})
    issue = _render(settings.model_copy(update={"clinic": clinic}))
    assert re.search(
        r'<img alt="CloudForm Massage"[^>]*src="https://img.example/logo.png"', issue.html
    )
    assert ">CloudForm Massage</p>" not in issue.html


def test_hero_image_has_the_title_as_alt(settings: Settings) -> None:
    issue = _render(settings, _article(image="https://img.example/hero.jpg"))
    assert re.search(r'<img alt="Plain Article"[^>]*src="https://img.example/hero.jpg"', issue.html)


def test_no_booking_button_without_booking_url(settings: Settings) -> None:
    clinic = settings.clinic.model_copy(update={"booking_url": None})
    issue = _render(settings.model_copy(update={"clinic": clinic}))
    assert "Book a massage" not in issue.html and "Book a massage" not in issue.text


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


# -- article HTML is sanitized ---------------------------------------------------------------

HOSTILE = """\
Hello <script>alert('x')</script> world.

<style>body { display: none }</style>
<iframe src="https://evil.example/"></iframe>
<form action="https://evil.example/"><input name="q"><button>Go</button></form>
<img src="https://img.example/a.png" onerror="alert(1)" alt="a">
<a href="javascript:alert(1)">click</a> <a href="https://ok.example/" onclick="x()">ok</a>
<p style="color:red" class="x" id="y">styled</p>

[md js](javascript:alert(2)) and [mail](mailto:hi@example.com)
"""


def _attributes(html: str) -> list[str]:
    return re.findall(r'\s([\w-]+="[^"]*")', html)


def _markup(html: str) -> str:
    """The HTML with attribute values blanked, so only real markup is left to search."""
    return re.sub(r'="[^"]*"', '=""', html)


def test_hostile_markdown_is_sanitized() -> None:
    html = markdown_to_html(HOSTILE).lower()
    banned = ("<script", "alert('x')", "<style", "display: none", "<iframe", "<form", "<input",
              "<button", "onerror", "onclick", "style=", "class=", "id=")  # fmt: skip
    for fragment in banned:
        assert fragment not in html, fragment
    # markdown-it leaves a javascript: Markdown link as inert text; no attribute holds one
    assert not any("javascript:" in attr for attr in _attributes(html))
    assert '<img src="https://img.example/a.png" alt="a">' in html
    assert '<a href="https://ok.example/" rel="noopener noreferrer">ok</a>' in html
    assert 'href="mailto:hi@example.com"' in html


def test_hostile_markdown_is_sanitized_in_the_rendered_issue(settings: Settings) -> None:
    issue = _render(settings, _article(body_markdown=HOSTILE))
    markup = _markup(issue.html.lower())
    assert "<script" not in markup and "<iframe" not in markup and "<form" not in markup
    assert "onerror" not in markup and "onclick" not in markup
    assert not any("javascript:" in attr for attr in _attributes(issue.html.lower()))


def test_markdown_extensions_tables_and_strikethrough() -> None:
    html = markdown_to_html("| a | b |\n|---|--:|\n| 1 | 2 |\n\n~~old~~ new")
    assert "<table>" in html and '<td style="text-align:right">2</td>' in html
    assert "<s>old</s>" in html


def test_relative_links_resolve_against_the_blog_or_are_dropped() -> None:
    md = "[book](/book) ![pic](img/a.png)"
    resolved = markdown_to_html(md, base_url="https://blog.example/posts/hip")
    assert 'href="https://blog.example/book"' in resolved
    assert 'src="https://blog.example/posts/img/a.png"' in resolved
    dropped = markdown_to_html(md)
    assert "href=" not in dropped and "src=" not in dropped


def test_links_in_the_text_part_keep_their_urls(settings: Settings) -> None:
    issue = _render(
        settings,
        _article(
            body_markdown="See [the guide](https://example.com/g) or <https://example.com/raw>."
        ),
    )
    assert "See the guide (https://example.com/g) or https://example.com/raw." in issue.text


# -- personalization ------------------------------------------------------------------------


def _values(
    first_name: str = "Sam", url: str = "https://n.example/u/abc?x=1&y=2"
) -> dict[str, str]:
    return {"first_name": first_name, "unsubscribe_url": url}


def test_personalizer_fills_html_and_text(issue: RenderedIssue) -> None:
    merge = Personalizer(issue)
    html, text = merge.html(_values()), merge.text(_values())
    assert "Hi Sam," in html and "Hi Sam," in text
    assert 'href="https://n.example/u/abc?x=1&amp;y=2"' in html
    assert "Unsubscribe: https://n.example/u/abc?x=1&y=2" in text
    assert "%%" not in html and "%%" not in text


def test_personalizer_escapes_html_but_not_text(issue: RenderedIssue) -> None:
    merge = Personalizer(issue)
    values = _values(first_name='<script>alert("x")</script>')
    html = merge.html(values)
    assert "<script>alert" not in html
    assert "Hi &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;," in html
    assert 'Hi <script>alert("x")</script>,' in merge.text(values)


def test_personalizer_is_single_pass(issue: RenderedIssue) -> None:
    merge = Personalizer(issue)
    values = _values(first_name="%%unsubscribe_url%%")
    assert "Hi %%unsubscribe_url%%," in merge.html(values)
    assert "Hi %%unsubscribe_url%%," in merge.text(values)


def test_personalizer_accepts_a_personalization_record(issue: RenderedIssue) -> None:
    merge = Personalizer(issue)
    record = Personalization(first_name="Sam", unsubscribe_url="https://n.example/u/1")
    assert merge.text(record) == merge.text(record.values())


def test_personalizer_needs_every_value(issue: RenderedIssue) -> None:
    with pytest.raises(KeyError):
        Personalizer(issue).text({"first_name": "Sam"})


def test_personalizer_is_cheap_per_recipient(issue: RenderedIssue) -> None:
    merge = Personalizer(issue)
    start = time.perf_counter()
    for n in range(1000):
        merge.html(_values(first_name=f"Sam{n}"))
    assert time.perf_counter() - start < 2.0  # generous: ~50 µs each in practice


# -- templates ------------------------------------------------------------------------------


def test_template_syntax_error_names_file_and_line(settings: Settings, tmp_path: Path) -> None:
    (tmp_path / "templates").mkdir()
    broken = tmp_path / "templates" / "newsletter.mjml"
    broken.write_text("<mjml>\n<mj-body>\n{% if nav %}\n</mj-body>\n</mjml>\n", encoding="utf-8")
    local = settings.model_copy(update={"root": tmp_path})
    with pytest.raises(TemplateError) as caught:
        _render(local)
    assert isinstance(caught.value, PipelineError) and isinstance(caught.value, ValueError)
    message = str(caught.value)
    assert f"{broken}:" in message
    assert re.search(r"newsletter\.mjml:\d+: ", message)


def test_undefined_variable_names_file_and_line(settings: Settings, tmp_path: Path) -> None:
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "newsletter.txt").write_text(
        "ok\n{{ no_such_thing }}\n", encoding="utf-8"
    )
    with pytest.raises(TemplateError, match=r"newsletter\.txt:2: .*no_such_thing"):
        _render(settings.model_copy(update={"root": tmp_path}))


def test_invalid_mjml_is_a_template_error(settings: Settings, tmp_path: Path) -> None:
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "newsletter.mjml").write_text("<mjml><mj-body>", encoding="utf-8")
    with pytest.raises(TemplateError, match=r"newsletter\.mjml"):
        _render(settings.model_copy(update={"root": tmp_path}))


def test_folder_templates_override_the_package_file_by_file(
    settings: Settings, tmp_path: Path
) -> None:
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "newsletter.txt").write_text(
        "Custom {{ title }} {{ unsubscribe_url }}\n", encoding="utf-8"
    )
    issue = _render(settings.model_copy(update={"root": tmp_path}))
    assert issue.text == "Custom Plain Article %%unsubscribe_url%%\n"
    assert "Hi %%first_name%%," in issue.html  # the package's MJML still applies


def test_missing_template_dir_falls_back_to_the_package_design(
    settings: Settings, tmp_path: Path
) -> None:
    issue = _render(settings.model_copy(update={"root": tmp_path}))
    assert "Unsubscribe: %%unsubscribe_url%%" in issue.text


def test_html_template_autoescapes_article_fields(settings: Settings) -> None:
    issue = _render(settings, _article(title='<b>Bold</b> & "quoted"'))
    assert "<b>" not in _markup(issue.html)
    assert "&lt;b&gt;Bold&lt;/b&gt; &amp; " in issue.html
    assert '<b>Bold</b> & "quoted"' in issue.text


# -- helpers ---------------------------------------------------------------------------------


def test_series_title() -> None:
    assert series_title("massage-and-wellbeing") == "Massage and Wellbeing"
    assert series_title("the-art-of-rest") == "The Art of Rest"


@pytest.mark.parametrize("brand", ["#2f6f62", "#f5c542", "#ffffff", "#000000", "#e91e63"])
def test_theme_keeps_text_readable_for_any_brand_colour(brand: str) -> None:
    theme = Theme.from_brand(brand)
    assert contrast(theme.link, "#ffffff") >= 4.5
    assert contrast(theme.link_dark, "#1d2321") >= 4.5
    assert contrast(theme.on_brand, theme.button) >= 4.5
