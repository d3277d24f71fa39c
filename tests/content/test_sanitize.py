"""The one sanitizing policy (pipeline/content/sanitize.py): its two profiles and its callers.

Each profile keeps and drops what it should; render's Markdown and the feed importer
both clean through it (their output follows the profile's lists, tag by tag); and both
produce, byte for byte, what the two separate allow-lists produced before they became
one policy (a frozen copy of those is kept below as the reference).
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any, Final

import feedparser
import nh3
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from pipeline.content import sanitize
from pipeline.content.sanitize import EMAIL, FEED, clean_email_html, clean_feed_html, text_only
from pipeline.feeds import sanitize_html
from pipeline.render import markdown_to_html

ROOT = Path(__file__).resolve().parents[2]
FEEDS = Path(__file__).resolve().parents[1] / "data" / "feeds"
SEED = Path(__file__).resolve().parents[1] / "data" / "seed" / "hip-pain-massage-therapy.txt"
SAMPLE_ARTICLES = [*sorted((ROOT / "articles").glob("*.md")), SEED]
BASE = "https://blog.example/posts/hip"

# -- the two allow-lists as they were before this module (the reference) ---------------
# Copied verbatim from pipeline/render.py and pipeline/feeds.py at commit 9023691, so
# that "one policy" is shown to change no byte of either output.

_OLD_EMAIL_TAGS: Final = frozenset(
    {
        "p", "h1", "h2", "h3", "h4", "ul", "ol", "li", "strong", "em", "b", "i", "s", "del",
        "a", "img", "blockquote", "code", "pre", "hr", "br",
        "table", "thead", "tbody", "tr", "th", "td",
    }
)  # fmt: skip
_OLD_EMAIL_ATTRIBUTES: Final = {
    "a": frozenset({"href", "title"}),
    "img": frozenset({"src", "alt", "width", "height", "title"}),
    "ol": frozenset({"start"}),
    "th": frozenset({"style"}),
    "td": frozenset({"style"}),
}
_OLD_EMAIL_DROPPED: Final = frozenset(
    {"script", "style", "iframe", "object", "embed", "template", "svg", "math", "form", "select"}
)
_OLD_FEED_TAGS: Final = frozenset(
    {
        "p", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "li", "strong", "em", "b", "i",
        "s", "del", "a", "img", "blockquote", "code", "pre", "hr", "br",
        "table", "thead", "tbody", "tr", "th", "td",
    }
)  # fmt: skip
_OLD_FEED_ATTRIBUTES: Final = {
    "a": frozenset({"href", "title"}),
    "img": frozenset({"src", "alt", "title"}),
    "ol": frozenset({"start"}),
}
_OLD_FEED_DROPPED: Final = frozenset(
    {
        "script", "style", "iframe", "object", "embed", "template", "svg", "math", "form",
        "select", "textarea", "button", "noscript", "head", "title", "canvas", "audio", "video",
    }
)  # fmt: skip
_OLD_SCHEMES: Final = frozenset({"http", "https", "mailto"})


@functools.lru_cache(maxsize=32)
def _old_email_cleaner(base_url: str | None) -> nh3.Cleaner:
    relative: nh3.UrlRelative = ("rewrite_with_base", base_url) if base_url else "deny"
    return nh3.Cleaner(
        tags=_OLD_EMAIL_TAGS,
        clean_content_tags=_OLD_EMAIL_DROPPED,
        attributes=_OLD_EMAIL_ATTRIBUTES,
        url_schemes=_OLD_SCHEMES,
        link_rel="noopener noreferrer",
        filter_style_properties={"text-align"},
        url_relative=relative,
    )


def _old_email(fragment: str, base_url: str | None) -> str:
    if base_url is not None and not base_url.startswith(("http://", "https://")):
        base_url = None
    return _old_email_cleaner(base_url).clean(fragment)


def _old_drop_empty_urls(tag: str, attribute: str, value: str) -> str | None:
    if attribute in {"href", "src"} and not value.strip():
        return None
    return value


def _old_feed(fragment: str, base_url: str) -> str:
    cleaner = nh3.Cleaner(
        tags=set(_OLD_FEED_TAGS),
        clean_content_tags=set(_OLD_FEED_DROPPED),
        attributes={tag: set(names) for tag, names in _OLD_FEED_ATTRIBUTES.items()},
        url_schemes=set(_OLD_SCHEMES),
        url_relative=("rewrite_with_base", base_url),
        attribute_filter=_old_drop_empty_urls,
        link_rel=None,
    )
    cleaned = re.sub(r"<img(?![^>]*\ssrc=)[^>]*>", "", cleaner.clean(fragment))
    return re.sub(r"<(/?)h[56]>", r"<\1h4>", cleaned)


_markdown = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])


def _feed_fragments() -> list[tuple[str, str, str]]:
    """(fixture, entry link or base, raw HTML) of every content and summary in tests/data/feeds."""
    found: list[tuple[str, str, str]] = []
    for path in sorted(FEEDS.glob("*.xml")):
        parsed: Any = feedparser.parse(path.read_bytes(), resolve_relative_uris=False)
        for entry in parsed.entries:
            link = str(entry.get("link") or "")
            base = link if link.startswith(("http://", "https://")) else BASE
            values = [str(c.get("value") or "") for c in entry.get("content") or []]
            values.append(str(entry.get("summary") or ""))
            found += [(path.name, base, value) for value in values if value]
    return found


FEED_FRAGMENTS: Final = _feed_fragments()
#: Hand-written hostile HTML, on top of the fixtures.
HOSTILE: Final = (
    '<p onclick="x()" style="color:red">one</p><script>alert(1)</script><style>p{}</style>'
    '<iframe src="https://evil.example/"></iframe><form action="/x"><input name="pw"></form>'
    '<a href="javascript:alert(1)">js</a> <a href="">empty</a> <a href="/rel">rel</a>'
    '<img src="data:image/png;base64,AAAA" alt="d"><img src="pic.png" width="900" height="9">'
    '<h5>five</h5><h6>six</h6><table><tr><td style="text-align:right;color:red">1</td></tr>'
    "</table><textarea>t</textarea><noscript>n</noscript><video>v</video>"
    '<a href="mailto:a@b.c">m</a>'
)


# -- byte-identical to the former two allow-lists -----------------------------------


def test_the_fixtures_give_the_comparison_something_to_compare() -> None:
    assert len(FEED_FRAGMENTS) >= 10 and len(SAMPLE_ARTICLES) >= 4
    assert {name for name, _, _ in FEED_FRAGMENTS} >= {"hostile.xml", "relative-links.xml"}


@pytest.mark.parametrize(("fixture", "base", "fragment"), FEED_FRAGMENTS)
def test_both_profiles_are_byte_identical_to_before_on_the_feed_fixtures(
    fixture: str, base: str, fragment: str
) -> None:
    assert sanitize_html(fragment, base_url=base) == _old_feed(fragment, base), fixture
    assert clean_email_html(fragment, base_url=base) == _old_email(fragment, base), fixture
    assert clean_email_html(fragment) == _old_email(fragment, None), fixture


@pytest.mark.parametrize("path", SAMPLE_ARTICLES, ids=lambda p: p.name)
def test_both_profiles_are_byte_identical_to_before_on_the_sample_articles(path: Path) -> None:
    html = _markdown.render(path.read_text(encoding="utf-8"))
    for base in (None, BASE, "/not/absolute"):
        assert markdown_to_html(path.read_text(encoding="utf-8"), base_url=base) == _old_email(
            html, base
        )
    assert sanitize_html(html, base_url=BASE) == _old_feed(html, BASE)


def test_both_profiles_are_byte_identical_to_before_on_hostile_html() -> None:
    for base in (BASE, "https://other.example/"):
        assert clean_feed_html(HOSTILE, base_url=base) == _old_feed(HOSTILE, base)
        assert clean_email_html(HOSTILE, base_url=base) == _old_email(HOSTILE, base)
    assert clean_email_html(HOSTILE) == _old_email(HOSTILE, None)


_TAG_NAMES = sorted(_OLD_FEED_TAGS | _OLD_FEED_DROPPED | {"div", "span", "input", "h5", "u"})
_ATTRS = ["href", "src", "alt", "title", "onclick", "style", "width", "class", "start"]
_URLS = ["/rel", "rel/x", "https://a.example/x", "javascript:alert(1)", "", " ", "mailto:a@b.c"]


@st.composite
def _html(draw: st.DrawFn, depth: int = 2) -> str:
    parts: list[str] = []
    for _ in range(draw(st.integers(0, 3))):
        if depth == 0 or draw(st.booleans()):
            parts.append(draw(st.sampled_from(["text", "a & b", "<", "x\ny", ""])))
            continue
        tag = draw(st.sampled_from(_TAG_NAMES))
        attrs = ""
        for name in draw(st.lists(st.sampled_from(_ATTRS), max_size=3, unique=True)):
            value = draw(st.sampled_from([*_URLS, "text-align:center", "9", "x"]))
            attrs += f' {name}="{value}"'
        parts.append(f"<{tag}{attrs}>{draw(_html(depth - 1))}</{tag}>")
    return "".join(parts)


@settings(max_examples=300)
@given(fragment=_html(), base=st.sampled_from([BASE, "https://b.example/"]))
def test_both_profiles_are_byte_identical_to_before_on_generated_html(
    fragment: str, base: str
) -> None:
    assert clean_feed_html(fragment, base_url=base) == _old_feed(fragment, base)
    assert clean_email_html(fragment, base_url=base) == _old_email(fragment, base)
    assert clean_email_html(fragment) == _old_email(fragment, None)


# -- render and feeds clean through the profiles' lists -----------------------------


#: Elements with no content (so "inside" after one is text of its own), and <head>,
#: which an HTML parser ignores inside a body (so there is nothing to drop).
_VOID: Final = frozenset({"br", "embed", "hr", "img", "input", "head"})


def _in_context(tag: str, wrapper: str) -> str:
    """``<tag>inside</tag>`` where an HTML parser keeps the tag (table parts in a table)."""
    source = ' src="https://a.example/p.png"' if tag == "img" else ""
    element = f"<{tag}{source}>inside</{tag}>"
    if tag in {"th", "td"}:
        element = f"<table><tbody><tr>{element}</tr></tbody></table>"
    elif tag == "tr":
        element = f"<table><tbody>{element}</tbody></table>"
    elif tag in {"thead", "tbody"}:
        element = f"<table>{element}</table>"
    return f"<{wrapper}>{element}</{wrapper}>"


@pytest.mark.parametrize("tag", _TAG_NAMES)
def test_render_keeps_exactly_the_email_profiles_tags(tag: str) -> None:
    html = markdown_to_html(_in_context(tag, "p"))
    assert ("inside" in html) == (tag not in EMAIL.dropped_with_content or tag in _VOID), html
    assert (f"<{tag}" in html) == (tag in EMAIL.tags), html


@pytest.mark.parametrize("tag", _TAG_NAMES)
def test_feed_import_keeps_exactly_the_feed_profiles_tags(tag: str) -> None:
    html = sanitize_html(_in_context(tag, "div"), base_url=BASE)
    assert ("inside" in html) == (tag not in FEED.dropped_with_content or tag in _VOID), html
    shown = {"h5": "h4", "h6": "h4"}.get(tag, tag)  # email shows headings down to h4
    assert (f"<{shown}" in html) == (tag in FEED.tags), html


@pytest.mark.parametrize("attribute", ["alt", "title", "width", "height", "onclick", "class"])
def test_both_callers_keep_exactly_their_profiles_image_attributes(attribute: str) -> None:
    fragment = f'<img src="https://a.example/p.png" {attribute}="9">'
    email = markdown_to_html(fragment)
    feed = sanitize_html(fragment, base_url=BASE)
    assert (f'{attribute}="9"' in email) == (attribute in EMAIL.attributes["img"])
    assert (f'{attribute}="9"' in feed) == (attribute in FEED.attributes["img"])


def test_the_profiles_share_the_common_part() -> None:
    assert EMAIL.tags <= FEED.tags and FEED.tags - EMAIL.tags == {"h5", "h6"}
    assert EMAIL.dropped_with_content < FEED.dropped_with_content
    for tag, names in FEED.attributes.items():
        assert names <= EMAIL.attributes[tag]
    assert frozenset({"http", "https", "mailto"}) == sanitize.URL_SCHEMES


# -- what each profile keeps and drops ------------------------------------------------


@pytest.mark.parametrize("clean", [clean_email_html, lambda f: clean_feed_html(f, base_url=BASE)])
def test_each_profile_drops_what_runs_submits_embeds_or_restyles(clean: Any) -> None:
    html = clean(HOSTILE).lower()
    for gone in ("<script", "alert", "<style", "p{}", "<iframe", "<form", "<input", "onclick"):
        assert gone not in html, gone
    assert "color:red" not in html and "javascript:" not in html and "data:" not in html
    assert "<p>one</p>" in html
    assert '<a href="mailto:a@b.c"' in html
    # the text stays; the link that runs code does not
    assert re.search(r"<a( rel=\"noopener noreferrer\")?>js</a>", html), html


def test_the_email_profile_resolves_relative_urls_against_the_page_or_drops_them() -> None:
    fragment = '<a href="/rel">r</a><img src="pic.png" alt="p">'
    resolved = clean_email_html(fragment, base_url=BASE)
    assert '<a href="https://blog.example/rel" rel="noopener noreferrer">r</a>' in resolved
    assert '<img src="https://blog.example/posts/pic.png" alt="p">' in resolved
    for base in (None, "/posts/hip", "ftp://blog.example/"):
        dropped = clean_email_html(fragment, base_url=base)
        assert dropped == '<a rel="noopener noreferrer">r</a><img alt="p">'


def test_the_email_profile_keeps_table_alignment_and_image_sizes_only() -> None:
    html = clean_email_html(HOSTILE, base_url=BASE)
    assert '<td style="text-align:right">1</td>' in html
    assert 'width="900" height="9"' in html
    assert "<h5>" not in html and "five" in html  # unwrapped, its text kept
    # textarea, noscript and video are unwrapped here, their text kept
    assert "<textarea" not in html and "<noscript" not in html and "<video" not in html
    assert "</table>tnv<a" in html


def test_the_feed_profile_resolves_every_url_and_drops_empty_ones() -> None:
    html = clean_feed_html(HOSTILE, base_url=BASE)
    assert '<a href="https://blog.example/rel">rel</a>' in html  # no rel: Markdown drops it
    assert "<a>empty</a>" in html  # "" would otherwise become the base address
    assert '<img src="https://blog.example/posts/pic.png">' in html  # no sizes
    assert "<h4>five</h4><h4>six</h4>" in html
    assert "<td>1</td>" in html
    for gone in ("textarea", ">t<", "noscript", ">n<", "video", ">v<"):
        assert gone not in html, gone
    # an image whose only source was unsafe shows nothing, so it goes
    assert clean_feed_html('<img src="javascript:x" alt="a">', base_url=BASE) == ""


def test_text_only_keeps_the_words_of_a_title() -> None:
    assert text_only("Safe <script>alert(1)</script><b>Title</b> &amp; more") == (
        "Safe Title &amp; more"
    )
