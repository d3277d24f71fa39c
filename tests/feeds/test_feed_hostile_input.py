"""Hostile and broken feed input: scripts never reach a file, and each fault is one line.

Malformed XML, entries without a title or link, duplicate guids and files that are
not feeds at all are reported as `source: message` while the good entries still import.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from pipeline.content.articles import read_article
from pipeline.feeds import sanitize_html
from pipeline.render import markdown_to_html
from tests.feeds.feed_helpers import FEEDS, HOSTILE, SYDNEY, Item, rss, run


def test_hostile_markup_never_reaches_the_file(articles: Path) -> None:
    report = run(FEEDS / "hostile.xml", articles)
    assert [a.slug for a in report.added] == ["everything-bad"]
    # the entry whose link is javascript: is one line, not an article
    assert report.problems == (
        f"{FEEDS / 'hostile.xml'}: entry 2 ('A link that runs code'): its link"
        " \"javascript:alert('link')\" is not a web address; skipped",
    )
    text = (articles / "everything-bad.md").read_text(encoding="utf-8")
    assert not HOSTILE.search(text), HOSTILE.search(text)
    assert not HOSTILE.search(markdown_to_html(text))
    article = read_article(articles / "everything-bad.md", SYDNEY)
    assert article.title == "Safe Title"
    assert article.image == "https://hostile.example/x.jpg"  # not the javascript: media
    assert "Kept text one." in article.body_markdown
    assert "[a fine link](https://hostile.example/ok)" in article.body_markdown
    assert "![kept image](https://hostile.example/x.jpg)" in article.body_markdown


def test_sanitize_html_drops_what_runs_and_keeps_what_reads() -> None:
    clean = sanitize_html(
        '<p onclick="x()">Hi <a href="/a" onmouseover="y()">a</a>'
        '<img src="data:image/png;base64,AA"><img src="javascript:z()"><img src="b.png">'
        "</p><h6>Small</h6><input value=1><textarea>t</textarea>",
        base_url="https://blog.example/post/",
    )
    assert clean == (
        '<p>Hi <a href="https://blog.example/a">a</a>'
        '<img src="https://blog.example/post/b.png"></p><h4>Small</h4>'
    )


def test_malformed_xml_is_one_line_and_good_entries_still_import(articles: Path) -> None:
    report = run(FEEDS / "malformed.xml", articles)
    assert report.readable
    assert [a.slug for a in report.added] == ["first-post", "fish-and-chips"]
    assert len(report.problems) == 1
    assert report.problems[0].startswith(f"{FEEDS / 'malformed.xml'}: the feed is not well-formed")
    assert "line 13" in report.problems[0]


def test_entries_without_title_or_link_are_one_line_each(articles: Path) -> None:
    report = run(FEEDS / "missing-fields.xml", articles)
    source = FEEDS / "missing-fields.xml"
    assert report.problems == (
        f"{source}: entry 1 (https://incomplete.example/no-title): no title; skipped",
        f"{source}: entry 2 ('No Link Anywhere'): no link; skipped",
    )
    assert [a.slug for a in report.added] == ["complete"]
    assert report.readable


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such file"),
        (b"", "empty document"),
        (b"<html><body><h1>Welcome</h1><p>Our blog</p></body></html>", "a web page, not"),
        (b"<?xml version='1.0'?><notes><note>hi</note></notes>", "not an RSS or Atom feed"),
        (b"just some words", "not an RSS or Atom feed"),
    ],
)
def test_a_file_that_is_no_feed_reads_nothing(
    articles: Path, tmp_path: Path, content: bytes | None, message: str
) -> None:
    source = tmp_path / "feed.xml"
    if content is not None:
        source.write_bytes(content)
    report = run(source, articles)
    assert not report.readable and report.added == ()
    assert len(report.problems) == 1
    assert report.problems[0].startswith(f"{source}: {message}")
    assert list(articles.iterdir()) == []


def test_a_feed_whose_every_entry_is_bad_reads_nothing(articles: Path, tmp_path: Path) -> None:
    source = tmp_path / "bad.xml"
    source.write_text(rss([Item(title="", link="https://x.example/a")]), encoding="utf-8")
    report = run(source, articles)
    assert not report.readable
    assert report.problems == (f"{source}: entry 1 (https://x.example/a): no title; skipped",)


def test_the_same_guid_twice_in_one_feed_imports_once(articles: Path, tmp_path: Path) -> None:
    source = tmp_path / "dup.xml"
    items = [
        Item("Second", "https://x.example/second", guid="same", date=datetime(2024, 2, 1)),
        Item("First", "https://x.example/first", guid="same", date=datetime(2024, 1, 1)),
    ]
    source.write_text(rss(items), encoding="utf-8")
    report = run(source, articles)
    assert [a.slug for a in report.added] == ["first"]
    assert report.problems == (
        f"{source}: entry 1 ('Second'): same guid or link as an earlier entry; skipped",
    )
