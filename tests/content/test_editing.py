"""Editing article files from a form (pipeline.content.editing): a save changes only
what the form changed, reads back as ``check`` reads it, and never loses a write."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from pipeline.content.articles import read_article
from pipeline.content.editing import (
    ArticleExists,
    ArticleFile,
    ArticleForm,
    StaleVersion,
    edited_text,
    new_article_text,
    read_for_editing,
    save_article,
    version_of,
)

TZ = ZoneInfo("Australia/Sydney")

HAND_WRITTEN = """\
---
# Alan's draft: check the dates with reception
title: 'Back Pain: a Guide'
series: massage-and-wellbeing
part: 3
summary: >
  A long summary
  folded over two lines.
author: Alan
canonical_url: https://example.com/back-pain   # the blog's copy
send_after: 2026-12-01T09:00:00+11:00
---
Body line one.

Body line two.
"""


def opened(tmp_path: Path, text: str, *, crlf: bool = False) -> ArticleFile:
    path = tmp_path / "back-pain.md"
    path.write_bytes((text.replace("\n", "\r\n") if crlf else text).encode("utf-8"))
    found = read_for_editing(path)
    assert isinstance(found, ArticleFile)
    return found


def test_the_form_shows_the_file_and_an_untouched_form_gives_the_same_text(
    tmp_path: Path,
) -> None:
    article = opened(tmp_path, HAND_WRITTEN)
    form = article.form(TZ)
    assert form.title == "Back Pain: a Guide"
    assert form.summary == "A long summary folded over two lines.\n"
    assert (form.send_date, form.send_time, form.status) == ("2026-12-01", "09:00", "queued")
    assert edited_text(article, form, TZ) == HAND_WRITTEN
    # As a browser posts it back: the summary flattened, the body with CRLF.
    posted = replace(form, summary=form.summary.strip(), body=form.body.replace("\n", "\r\n"))
    assert edited_text(article, posted, TZ) == HAND_WRITTEN


def test_only_changed_lines_change_and_new_keys_go_in_order(tmp_path: Path) -> None:
    article = opened(tmp_path, HAND_WRITTEN)
    form = replace(
        article.form(TZ), summary="Shorter.", status="draft", image="https://example.com/a.jpg"
    )
    text = edited_text(article, replace(form, part="", series=""), TZ)
    assert text == (
        "---\n"
        "# Alan's draft: check the dates with reception\n"
        "title: 'Back Pain: a Guide'\n"
        'summary: "Shorter."\n'
        "author: Alan\n"
        "canonical_url: https://example.com/back-pain   # the blog's copy\n"
        "image: https://example.com/a.jpg\n"
        "send_after: 2026-12-01T09:00:00+11:00\n"
        "status: draft\n"
        "---\n"
        "Body line one.\n\nBody line two.\n"
    )
    path = tmp_path / "back-pain.md"
    assert save_article(path, text, article.version)
    saved = read_article(path, TZ)
    assert (saved.summary, saved.status, saved.series, saved.part) == (
        "Shorter.",
        "draft",
        None,
        None,
    )
    assert saved.canonical_url == "https://example.com/back-pain"


@pytest.mark.parametrize(
    ("field", "typed", "line"),
    [
        ("title", 'He said "no" # twice', 'title: "He said \\"no\\" # twice"'),
        ("author", "yes", 'author: "yes"'),  # YAML would read a bare yes as true
        ("author", "Dr. O'Neil", "author: Dr. O'Neil"),
        ("series", "a: b", 'series: "a: b"'),
        ("part", "two", "part: two"),  # kept as typed, for check to name
    ],
)
def test_values_are_quoted_where_yaml_needs_it(field: str, typed: str, line: str) -> None:
    form = replace(ArticleForm(title="T", series="s", part="1"), **{field: typed})
    text = new_article_text(form)
    assert f"\n{line}\n" in text


def test_send_after_from_the_date_and_time_fields(tmp_path: Path) -> None:
    form = ArticleForm(title="T", send_date="2026-12-01", send_time="07:30", body="Hi.\n")
    text = new_article_text(form)
    assert "\nsend_after: 2026-12-01 07:30\n" in text
    path = tmp_path / "t.md"
    assert save_article(path, text, None)
    moment = read_article(path, TZ).send_after
    assert moment is not None and moment.isoformat() == "2026-12-01T07:30:00+11:00"


def test_a_windows_file_keeps_its_line_ends(tmp_path: Path) -> None:
    article = opened(tmp_path, HAND_WRITTEN, crlf=True)
    path = article.path
    assert not save_article(path, edited_text(article, article.form(TZ), TZ), article.version)
    assert path.read_bytes() == article.raw  # untouched: not written
    changed = edited_text(article, replace(article.form(TZ), title="New"), TZ)
    assert save_article(path, changed, article.version)
    raw = path.read_bytes()
    assert b'\r\ntitle: "New"\r\n' in raw and b"\n" not in raw.replace(b"\r\n", b"")


def test_stale_versions_and_taken_names_are_refused(tmp_path: Path) -> None:
    article = opened(tmp_path, HAND_WRITTEN)
    path = article.path
    theirs = edited_text(article, replace(article.form(TZ), title="Theirs"), TZ)
    mine = edited_text(article, replace(article.form(TZ), title="Mine"), TZ)
    assert save_article(path, theirs, article.version)
    with pytest.raises(StaleVersion):
        save_article(path, mine, article.version)
    assert "Theirs" in path.read_text(encoding="utf-8")
    assert save_article(path, mine, version_of(path.read_bytes()))  # from the fresh version
    with pytest.raises(ArticleExists):
        save_article(path, new_article_text(ArticleForm(title="X")), None)
    path.unlink()
    with pytest.raises(StaleVersion):
        save_article(path, mine, article.version)
    # No temporary file is ever left behind.
    assert [p.name for p in tmp_path.iterdir()] == []


def test_a_file_whose_front_matter_cannot_be_read_is_not_edited(tmp_path: Path) -> None:
    path = tmp_path / "broken.md"
    path.write_text("---\ntitle: [unclosed\n---\nBody\n", encoding="utf-8")
    problems = read_for_editing(path)
    assert isinstance(problems, list) and "broken YAML" in problems[0].message
