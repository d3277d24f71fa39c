"""Importing a feed again: nothing is added twice, edits and deletions are respected.

With or without the database's record of entries, a second import adds nothing; an
edited entry is reported as changed and rewritten only with `update` and only if not
sent; a deleted article is not brought back. A property test imports random feeds twice.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import delete
from sqlalchemy.orm import Session, sessionmaker

from pipeline.content.articles import load_articles, read_article
from pipeline.store.db import make_engine, make_sessionmaker, migrate
from pipeline.store.models import FeedEntry
from tests.feeds.feed_helpers import FEEDS, SYDNEY, Item, rss, run


def test_a_second_import_adds_nothing(articles: Path, sessions: sessionmaker[Session]) -> None:
    first = run(FEEDS / "squarespace.xml", articles, sessions)
    before = {p.name: p.read_bytes() for p in articles.iterdir()}
    second = run(FEEDS / "squarespace.xml", articles, sessions)
    assert len(first.added) == 3
    assert (second.added, second.changed, second.unchanged) == ((), (), 3)
    assert {p.name: p.read_bytes() for p in articles.iterdir()} == before
    with sessions() as session:
        assert session.query(FeedEntry).count() == 3


def test_idempotent_without_the_database_too(articles: Path, tmp_path: Path) -> None:
    # A clean clone has the article files (with feed_key) but a new database.
    run(FEEDS / "atom.xml", articles)
    engine = make_engine(f"sqlite:///{tmp_path / 'fresh.db'}")
    migrate(engine)
    fresh = make_sessionmaker(engine)
    report = run(FEEDS / "atom.xml", articles, fresh)
    assert (report.added, report.unchanged) == ((), 2)
    # ... and the database learnt the files' keys: a deleted one stays deleted
    (articles / "sleeping-positions.md").unlink()
    report = run(FEEDS / "atom.xml", articles, fresh)
    engine.dispose()
    assert (report.added, report.removed) == ((), 1)


def test_an_edited_entry_is_changed_then_updated_unless_sent(
    articles: Path, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    source = tmp_path / "feed.xml"
    items = [
        Item("One", "https://x.example/one", guid="g1", date=datetime(2024, 1, 1), body="Old."),
        Item("Two", "https://x.example/two", guid="g2", date=datetime(2024, 1, 2), body="Old."),
    ]
    source.write_text(rss(items), encoding="utf-8")
    run(source, articles, sessions, status="draft")
    # the writer schedules part one; the blog then edits both entries
    one = articles / "one.md"
    one.write_text(
        one.read_text(encoding="utf-8").replace("status: draft", "status: queued"),
        encoding="utf-8",
    )
    edited = [
        Item("One, revised", "https://x.example/one", guid="g1", date=datetime(2024, 1, 1)),
        Item("Two", "https://x.example/two", guid="g2", date=datetime(2024, 1, 2), body="New."),
    ]
    source.write_text(rss(edited), encoding="utf-8")

    report = run(source, articles, sessions, sent=("two",))
    assert report.added == () and report.updated == ()
    assert [(a.slug, a.sent) for a in report.changed] == [("one", False), ("two", True)]
    assert read_article(one, SYDNEY).title == "One"

    report = run(source, articles, sessions, sent=("two",), update=True)
    assert [a.slug for a in report.updated] == ["one"]
    assert [a.slug for a in report.changed] == ["two"]  # sent: never rewritten
    rewritten = read_article(one, SYDNEY)
    assert (rewritten.title, rewritten.part, rewritten.status) == ("One, revised", 1, "queued")
    assert "Old." in (articles / "two.md").read_text(encoding="utf-8")
    assert sorted(p.name for p in articles.iterdir()) == ["one.md", "two.md"]

    again = run(source, articles, sessions, sent=("two",), update=True)
    assert again.updated == () and again.unchanged == 1


def test_a_deleted_article_is_not_brought_back(
    articles: Path, sessions: sessionmaker[Session]
) -> None:
    run(FEEDS / "atom.xml", articles, sessions)
    (articles / "ice-and-heat.md").unlink()
    report = run(FEEDS / "atom.xml", articles, sessions)
    assert (report.added, report.removed, report.unchanged) == ((), 1, 1)
    assert not (articles / "ice-and-heat.md").exists()


# -- property: importing twice adds nothing ---------------------------------------------


_text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=12)
_items = st.builds(
    Item,
    title=_text,
    link=st.one_of(
        st.none(),
        st.sampled_from(["a", "b", "c/d", "e.html"]).map(
            lambda path: f"https://blog.example/{path}"
        ),
    ),
    # YAML would read some of these as numbers, booleans or dates: they must stay text
    guid=st.one_of(st.none(), st.sampled_from(["g1", "g2", "123", "true", "2024-01-01", "a: b"])),
    date=st.one_of(st.none(), st.datetimes(datetime(2020, 1, 1), datetime(2025, 1, 1))),
    body=st.one_of(_text, st.just("<p>Hi <script>x()</script><b>there</b></p>")),
)


@pytest.fixture(scope="module")
def shared_sessions(tmp_path_factory: pytest.TempPathFactory) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(f"sqlite:///{tmp_path_factory.mktemp('prop') / 'feeds.db'}")
    migrate(engine)
    yield make_sessionmaker(engine)
    engine.dispose()


@settings(max_examples=40)
@given(items=st.lists(_items, max_size=5))
def test_importing_any_feed_twice_adds_nothing(
    shared_sessions: sessionmaker[Session], items: list[Item]
) -> None:
    with shared_sessions.begin() as session:
        session.execute(delete(FeedEntry))
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "articles").mkdir()
        (root / "feed.xml").write_text(rss(items), encoding="utf-8")
        first = run(root / "feed.xml", root / "articles", shared_sessions)
        files = {p.name: p.read_bytes() for p in (root / "articles").iterdir()}
        second = run(root / "feed.xml", root / "articles", shared_sessions)
        assert second.added == () and second.changed == () and second.updated == ()
        assert second.unchanged == len(first.added)
        assert {p.name: p.read_bytes() for p in (root / "articles").iterdir()} == files
        found = load_articles(root / "articles", SYDNEY)
        assert found.problems == ()
        assert sorted(a.part or 0 for a in found.articles) == list(range(1, len(files) + 1))
