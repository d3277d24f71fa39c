"""Where imported articles go and what they are called.

The articles folder must exist; new entries continue the series' part numbers without
overwriting a file; `--since` and `--limit` take entries oldest first; options are
checked; slugs and entry keys are made from links, titles and guids.
"""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path

import pytest

from pipeline.content.articles import load_articles, read_article
from pipeline.feeds import FeedError, ImportOptions, entry_key, parse_since, slug_for, slugify
from tests.feeds.feed_helpers import FEEDS, SYDNEY, run


def test_a_missing_articles_folder_is_one_line(tmp_path: Path) -> None:
    report = run(FEEDS / "atom.xml", tmp_path / "nowhere")
    assert not report.readable
    assert report.problems == (
        f"{tmp_path / 'nowhere'}: articles folder not found; nothing imported",
    )


def test_new_parts_follow_the_series_and_never_overwrite(articles: Path) -> None:
    # A hand-written part 4 of the series, under the slug an entry would take.
    (articles / "ice-and-heat.md").write_text(
        "---\ntitle: Mine\nseries: imported\npart: 4\n---\nMine.\n", encoding="utf-8"
    )
    report = run(FEEDS / "atom.xml", articles)
    assert [(a.slug, a.part) for a in report.added] == [
        ("ice-and-heat-2", 5),
        ("sleeping-positions", 6),
    ]
    assert read_article(articles / "ice-and-heat.md", SYDNEY).title == "Mine"
    assert load_articles(articles, SYDNEY).problems == ()


def test_since_and_limit_take_entries_oldest_first(articles: Path) -> None:
    report = run(FEEDS / "squarespace.xml", articles, since=parse_since("2023-02-01", SYDNEY))
    assert [a.slug for a in report.added] == [
        "hip-pain-massage-therapy",
        "massage-guns-are-they-worth-it",
    ]
    assert report.held_back == 1
    shutil.rmtree(articles)
    articles.mkdir()
    first = run(FEEDS / "squarespace.xml", articles, limit=2)
    second = run(FEEDS / "squarespace.xml", articles, limit=2)
    assert [(a.slug, a.part) for a in first.added + second.added] == [
        ("massage-and-mental-health", 1),
        ("hip-pain-massage-therapy", 2),
        ("massage-guns-are-they-worth-it", 3),
    ]
    assert (first.held_back, second.held_back) == (1, 0)


def test_options_are_checked() -> None:
    with pytest.raises(FeedError, match="--series"):
        ImportOptions(series="Not A Slug")
    with pytest.raises(FeedError, match="--limit"):
        ImportOptions(series="s", limit=0)
    with pytest.raises(FeedError, match="--since"):
        parse_since("last tuesday", SYDNEY)
    assert parse_since("2024-01-31", SYDNEY) == datetime(2024, 1, 31, tzinfo=SYDNEY)


def test_slugs_and_keys() -> None:
    assert slugify("Massage & Mental Health") == "massage-and-mental-health"
    assert slugify("Ça va? Über-gut!") == "ca-va-uber-gut"
    assert slugify("ö" * 3) == "ooo" and slugify("日本語") == ""
    assert len(slugify("word " * 40)) <= 80
    assert slug_for("https://b.example/blog/Hip-Pain.html", "x") == "hip-pain"
    assert slug_for("https://b.example/?p=123", "Hello There") == "hello-there"
    assert slug_for("https://b.example/2024/01/05/", "Dated") == "dated"
    assert slug_for("https://b.example/", "日本語") == "article"
    assert entry_key("guid-1", "https://x/a", "c") == "guid-1"
    assert entry_key("  ", "https://x/a", "c") == "https://x/a"
    assert entry_key(None, None, "c").startswith("sha256:")
    assert entry_key("g" * 600, None, "c").startswith("sha256:")
