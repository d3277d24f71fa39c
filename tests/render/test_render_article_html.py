"""Article Markdown to email HTML: hostile HTML sanitized, Markdown extensions,
relative links resolved or dropped, links kept in the text part."""

from __future__ import annotations

import re

from pipeline.config import Settings
from pipeline.render import markdown_to_html
from tests.render.render_helpers import _article, _markup, _render

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
