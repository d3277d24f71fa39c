"""Feed import: RSS/Atom files and a loopback HTTP server into article files."""

from __future__ import annotations

import contextlib
import re
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import delete
from sqlalchemy.orm import Session, sessionmaker

from pipeline.config import load_settings
from pipeline.content.articles import load_articles, read_article
from pipeline.content.series import series_nav
from pipeline.feeds import (
    FeedError,
    FeedImportReport,
    ImportOptions,
    entry_key,
    html_to_body,
    import_feed,
    parse_since,
    sanitize_html,
    slug_for,
    slugify,
)
from pipeline.newsletter import Newsletter
from pipeline.render import markdown_to_html
from pipeline.store.db import make_engine, make_sessionmaker, migrate
from pipeline.store.models import FeedEntry, FeedSource
from tests.helpers import copy_sample_folder

FEEDS = Path(__file__).resolve().parents[1] / "data" / "feeds"
#: The clinic's real article, kept in the repository.
SEED = Path(__file__).resolve().parents[1] / "data" / "seed" / "hip-pain-massage-therapy.txt"
SYDNEY = ZoneInfo("Australia/Sydney")
BLOG = "https://www.cloudformmassage.com.au/blog"
SERIES_LINKS = [
    f"{BLOG}/massage-and-mental-health",
    f"{BLOG}/hip-pain-massage-therapy",
    f"{BLOG}/massage-guns-are-they-worth-it",
]
#: What must never reach a file or an email from a feed.
HOSTILE = re.compile(
    r"<script|<style|<iframe|<form|<input|<object|<embed|<svg|<math|<meta|<base|<link|<button"
    r"|\bon[a-z]+\s*=|javascript:|vbscript:|data:|alert\(",
    re.IGNORECASE,
)

#: The same, less the <style> and <meta> the email design carries itself.
IN_EMAIL = re.compile(HOSTILE.pattern.replace("<style|", "").replace("<meta|", ""), re.IGNORECASE)


@pytest.fixture
def articles(tmp_path: Path) -> Path:
    folder = tmp_path / "articles"
    folder.mkdir()
    return folder


@pytest.fixture
def sessions(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(f"sqlite:///{tmp_path / 'feeds.db'}")
    migrate(engine)
    yield make_sessionmaker(engine)
    engine.dispose()


def run(
    source: str | Path,
    articles: Path,
    sessions: sessionmaker[Session] | None = None,
    *,
    series: str = "imported",
    sent: tuple[str, ...] = (),
    **options: object,
) -> FeedImportReport:
    return import_feed(
        str(source),
        ImportOptions(series=series, **options),  # type: ignore[arg-type]
        articles_dir=articles,
        tz=SYDNEY,
        sessions=sessions,
        sent_slugs=sent,
    )


def front_and_body(path: Path) -> tuple[str, str]:
    _, front, body = path.read_text(encoding="utf-8").split("---\n", 2)
    return front, body


def words(text: str) -> str:
    """Text without markup, entities or spacing differences, for comparing content."""
    plain = re.sub(r"<[^>]+>", " ", text)
    plain = plain.replace("&amp;", "&").replace("&#x27;", "'").replace("&quot;", '"')
    return " ".join(re.sub(r"[*\\]", "", plain).split())


# -- formats -------------------------------------------------------------------------


def test_rss2_with_content_encoded(articles: Path) -> None:
    report = run(FEEDS / "rss2-content-encoded.xml", articles)
    assert report.problems == () and report.readable
    # publish order: the older entry (listed second) becomes part 1
    assert [(a.slug, a.part) for a in report.added] == [
        ("why-warm-ups-matter", 1),
        ("desk-stretches", 2),
    ]
    desk = read_article(articles / "desk-stretches.md", SYDNEY)
    assert desk.title == "Desk Stretches That Actually Help"
    assert desk.canonical_url == "https://stretch.example/blog/desk-stretches?utm_source=rss"
    assert desk.author == "Priya Shah"
    assert desk.summary == "Five stretches you can do without leaving your chair."
    assert desk.image == "https://stretch.example/images/desk-hero.jpg"  # the enclosure
    assert desk.feed_key == "stretch-example-post-101"
    assert desk.series == "imported" and desk.status == "queued"
    # content:encoded, not the description, is the body, as Markdown
    assert "## The stretches" in desk.body_markdown
    assert "1. Neck tilts" in desk.body_markdown
    assert "> Move little and often" in desk.body_markdown
    assert "| Neck tilt | 20 s |" in desk.body_markdown
    assert "![A person stretching at a desk](https://stretch.example/images/desk.jpg)" in (
        desk.body_markdown
    )
    warm = read_article(articles / "why-warm-ups-matter.md", SYDNEY)
    # a permalink guid is the link; RSS "email (Name)" gives the name only
    assert warm.canonical_url == "https://stretch.example/blog/why-warm-ups-matter"
    assert warm.author == "Priya Shah"
    # the blank line inside <pre> survives the trip through Markdown
    assert "2. Arm circles\n\n3. Leg swings" in markdown_to_html(warm.body_markdown)


def test_atom_with_xml_base_and_html_title(articles: Path) -> None:
    report = run(FEEDS / "atom.xml", articles)
    assert report.problems == ()
    assert [a.slug for a in report.added] == ["ice-and-heat", "sleeping-positions"]
    ice = read_article(articles / "ice-and-heat.md", SYDNEY)
    assert ice.title == "Ice & Heat: Which When?"  # type="html": markup stripped
    assert ice.canonical_url == "https://physio.example/journal/ice-and-heat"
    assert ice.image == "https://physio.example/media/ice-heat.png"
    assert ice.author == "Dr Sam Lee"
    assert ice.summary == "Ice for fresh injuries, heat for stiff muscles."
    assert "(https://physio.example/journal/acute-injuries)" in ice.body_markdown
    assert "(https://physio.example/journal/images/ice.jpg)" in ice.body_markdown
    sleep = read_article(articles / "sleeping-positions.md", SYDNEY)
    assert "**between the knees**" in sleep.body_markdown  # type="xhtml" content
    assert sleep.summary is None  # no summary of its own: render derives the preheader


def test_squarespace_feed_carries_the_seed_article(articles: Path) -> None:
    report = run(FEEDS / "squarespace.xml", articles)
    assert report.problems == ()
    assert [(a.title, a.part) for a in report.added] == [
        ("Massage & Mental Health", 1),
        ("Hip Pain & How Massage Therapy Helps", 2),
        ("Massage Guns, Are they worth it?", 3),
    ]
    hip = read_article(articles / "hip-pain-massage-therapy.md", SYDNEY)
    assert hip.canonical_url == SERIES_LINKS[1]
    assert hip.author == "Alan"
    assert hip.image is not None and hip.image.startswith("https://images.squarespace-cdn.com/")
    assert hip.feed_key.endswith(":63e1d21e2b3c4d5e6f708192") if hip.feed_key else False
    rendered = words(markdown_to_html(hip.body_markdown))
    assert len(rendered.split()) > 1500
    if SEED.exists():  # every sentence of the seed article made it into the email body
        seed = SEED.read_text(encoding="utf-8").split("\nAlan\n")[0]
        for line in seed.splitlines()[1:]:
            text = re.sub(r"^\s*\d+\.\s+", "", line).strip()
            if text:
                assert words(text) in rendered, text
    assert "1. **Arthritis:**" in hip.body_markdown
    assert "style=" not in hip.body_markdown and "sqs-" not in hip.body_markdown
    guns = read_article(articles / "massage-guns-are-they-worth-it.md", SYDNEY)
    assert "Short bursts, never on bone." in guns.body_markdown  # a figure's caption is kept


def test_relative_links_in_a_file_resolve_against_the_blog(articles: Path) -> None:
    report = run(FEEDS / "relative-links.xml", articles)
    assert report.problems == ()
    article = read_article(articles / "posture-at-the-desk.md", SYDNEY)
    # the entry link against the channel's link, the content against the entry's page
    assert article.canonical_url == "https://relative.example/blog/posture-at-the-desk"
    body = article.body_markdown
    assert "(https://relative.example/contact)" in body
    assert "(https://relative.example/services/massage)" in body
    assert "(https://relative.example/blog/posture-at-the-desk#booking)" in body
    assert "(https://relative.example/images/desk.jpg)" in body
    assert "(https://relative.example/blog/images/chair.jpg)" in body
    assert "(https://cdn.relative.example/lamp.png)" in body
    assert article.image == "https://relative.example/images/desk.jpg"
    for url in re.findall(r"\]\(([^)]*)\)", body):
        assert url.startswith("https://"), url


# -- hostile and broken input ---------------------------------------------------------


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


# -- idempotency, edits, slugs ---------------------------------------------------------


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


def test_a_missing_articles_folder_is_one_line(tmp_path: Path) -> None:
    report = run(FEEDS / "atom.xml", tmp_path / "nowhere")
    assert not report.readable
    assert report.problems == (
        f"{tmp_path / 'nowhere'}: articles folder not found; nothing imported",
    )


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


def test_markdown_that_would_lose_content_keeps_sanitized_html() -> None:
    clean = sanitize_html(
        "<table><tr><td><ul><li>one</li><li>two</li></ul></td><td>b</td></tr></table>"
        "<pre>first\n\nsecond</pre>",
        base_url="https://x.example/",
    )
    body = html_to_body(clean)
    assert body.startswith("<div>\n") and "\n\n" not in body
    rendered = markdown_to_html(body)
    assert "<li>one</li>" in rendered and "<li>two</li>" in rendered
    assert "first\n\nsecond" in rendered


# -- over HTTP -----------------------------------------------------------------------


@dataclass
class Route:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/rss+xml; charset=utf-8"
    etag: str | None = None
    last_modified: str | None = None
    hang: bool = False
    location: str | None = None


@dataclass
class FeedServer:
    """A loopback HTTP server with one behaviour per path; it records request headers."""

    routes: dict[str, Route] = field(default_factory=dict)
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    port: int = 0

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


def _handler(server: FeedServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            server.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
            route = server.routes.get(self.path, Route(status=404, body=b"not found"))
            if route.hang:
                server.release.wait(timeout=5)  # bounded, and released at teardown
            fresh = (route.etag and self.headers.get("If-None-Match") == route.etag) or (
                route.last_modified and self.headers.get("If-Modified-Since") == route.last_modified
            )
            status = 304 if fresh else route.status
            self.send_response(status)
            if route.location:
                self.send_header("Location", route.location)
            if route.etag:
                self.send_header("ETag", route.etag)
            if route.last_modified:
                self.send_header("Last-Modified", route.last_modified)
            body = b"" if status == 304 else route.body
            if status != 304:
                self.send_header("Content-Type", route.content_type)
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            with contextlib.suppress(OSError):  # the client gave up (the timeout test)
                self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FeedServer]:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    state = FeedServer()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    httpd.daemon_threads = True
    state.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield state
    finally:
        state.release.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


LAST_MODIFIED = format_datetime(datetime(2023, 2, 22, 1, 22, 10, tzinfo=UTC), usegmt=True)


def test_conditional_get_round_trip(
    server: FeedServer, articles: Path, sessions: sessionmaker[Session]
) -> None:
    server.routes["/feed"] = Route(
        body=(FEEDS / "squarespace.xml").read_bytes(),
        etag='"v1"',
        last_modified=LAST_MODIFIED,
    )
    first = run(server.url("/feed"), articles, sessions)
    assert len(first.added) == 3 and not first.not_modified
    second = run(server.url("/feed"), articles, sessions)
    assert second.not_modified and second.added == () and second.readable
    (_, headers1), (_, headers2) = server.requests
    assert "if-none-match" not in headers1
    assert headers1["user-agent"].startswith("newsletter-pipeline/")
    assert headers2["if-none-match"] == '"v1"'
    assert headers2["if-modified-since"] == LAST_MODIFIED
    with sessions() as session:
        source = session.query(FeedSource).one()
        assert (source.url, source.etag) == (server.url("/feed"), '"v1"')


def test_a_partial_import_does_not_skip_the_next_download(
    server: FeedServer, articles: Path, sessions: sessionmaker[Session]
) -> None:
    server.routes["/feed"] = Route(body=(FEEDS / "squarespace.xml").read_bytes(), etag='"v1"')
    run(server.url("/feed"), articles, sessions, limit=1)
    report = run(server.url("/feed"), articles, sessions)
    assert "if-none-match" not in server.requests[1][1]
    assert [a.part for a in report.added] == [2, 3]


def test_relative_links_over_http_resolve_against_the_final_url(
    server: FeedServer, articles: Path
) -> None:
    server.routes["/old"] = Route(status=301, location="/blog/rss.xml")
    server.routes["/blog/rss.xml"] = Route(body=(FEEDS / "relative-links.xml").read_bytes())
    report = run(server.url("/old"), articles)
    assert report.problems == ()
    article = read_article(articles / "posture-at-the-desk.md", SYDNEY)
    assert article.canonical_url == server.url("/blog/posture-at-the-desk")
    assert f"({server.url('/contact')})" in article.body_markdown
    assert f"({server.url('/images/desk.jpg')})" in article.body_markdown


def test_relative_links_resolve_against_the_entrys_page_not_the_feed_host(
    server: FeedServer, articles: Path
) -> None:
    # The feed comes through a proxy on another host; the entries live on the blog.
    body = (
        (FEEDS / "relative-links.xml")
        .read_bytes()
        .replace(
            b"<link>/blog/posture-at-the-desk</link>",
            b"<link>https://relative.example/blog/posture-at-the-desk</link>",
        )
    )
    server.routes["/proxy/feed.xml"] = Route(body=body)
    report = run(server.url("/proxy/feed.xml"), articles)
    assert report.problems == ()
    article = read_article(articles / "posture-at-the-desk.md", SYDNEY)
    assert "(https://relative.example/contact)" in article.body_markdown
    assert "(https://relative.example/blog/images/chair.jpg)" in article.body_markdown
    assert article.image == "https://relative.example/images/desk.jpg"
    assert "127.0.0.1" not in article.body_markdown


@pytest.mark.parametrize(
    ("route", "message"),
    [
        (
            Route(status=500, body=b"<rss version='2.0'><channel/></rss>"),
            "the server answered HTTP 500 Internal Server Error",
        ),
        (Route(status=404, body=b"gone"), "the server answered HTTP 404 Not Found"),
        (
            Route(
                body=b"<!doctype html><html><body><p>Blog</p></body></html>",
                content_type="text/html",
            ),
            "a web page, not an RSS or Atom feed",
        ),
    ],
)
def test_http_failures_are_one_line(
    server: FeedServer, articles: Path, route: Route, message: str
) -> None:
    server.routes["/feed"] = route
    report = run(server.url("/feed"), articles)
    assert not report.readable and report.added == ()
    assert len(report.problems) == 1
    assert report.problems[0].startswith(f"{server.url('/feed')}: {message}")


def test_a_server_that_does_not_answer_times_out(server: FeedServer, articles: Path) -> None:
    server.routes["/slow"] = Route(body=b"", hang=True)
    started = time.monotonic()
    report = run(server.url("/slow"), articles, timeout=0.3)
    assert time.monotonic() - started < 3
    assert report.problems == (f"{server.url('/slow')}: no answer within 0.3 s; nothing imported",)
    assert not report.readable


def test_a_refused_connection_is_one_line(articles: Path) -> None:
    # A port that was free a moment ago: nothing listens on it now.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/feed"
    report = run(url, articles, timeout=2)
    assert not report.readable
    assert len(report.problems) == 1
    assert report.problems[0].startswith(f"{url}: cannot fetch the feed (")


# -- property: importing twice adds nothing ---------------------------------------------


@dataclass(frozen=True)
class Item:
    title: str
    link: str | None
    guid: str | None = None
    date: datetime | None = None
    body: str = "Text."


def rss(items: list[Item]) -> str:
    parts = ['<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>T</title>']
    for item in items:
        parts.append("<item>")
        parts.append(f"<title>{escape(item.title)}</title>")
        if item.link is not None:
            parts.append(f"<link>{escape(item.link)}</link>")
        if item.guid is not None:
            parts.append(f'<guid isPermaLink="false">{escape(item.guid)}</guid>')
        if item.date is not None:
            moment = item.date.replace(tzinfo=UTC)
            parts.append(f"<pubDate>{format_datetime(moment)}</pubDate>")
        parts.append(f"<description>{escape(item.body)}</description></item>")
    parts.append("</channel></rss>")
    return "".join(parts)


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


# -- done when: the clinic's feed end to end ---------------------------------------------


def test_the_clinic_feed_becomes_a_working_series(tmp_path: Path) -> None:
    from pipeline.cli import collect_problems

    config = copy_sample_folder(tmp_path / "clinic")
    for path in (tmp_path / "clinic" / "articles").glob("*.md"):
        path.unlink()
    settings_ = load_settings(config, environ={"NEWSLETTER_SECRET_KEY": "feed-test"})
    newsletter = Newsletter(settings_)
    try:
        report = run(
            FEEDS / "squarespace.xml",
            settings_.articles_path,
            newsletter.sessions,
            series="massage-and-wellbeing",
            sent=tuple(newsletter.ledger.sent_slugs()),
        )
        assert [a.part for a in report.added] == [1, 2, 3]
        # `newsletter check` finds nothing wrong
        count, problems = collect_problems(settings_)
        assert (count, problems) == (3, [])
        found = newsletter.articles()
        series = sorted(found.articles, key=lambda a: a.part or 0)
        assert [a.canonical_url for a in series] == SERIES_LINKS  # publish order
        for index, article in enumerate(series):
            issue = newsletter.render(article.slug)
            nav = series_nav(article, series, sent_slugs=(), base_url=settings_.web.base_url)
            assert nav is not None
            if index > 0:
                assert nav.previous is not None and nav.previous.url == SERIES_LINKS[index - 1]
                assert f'href="{SERIES_LINKS[index - 1]}"' in issue.html
            if index < 2:
                assert nav.next is not None and nav.next.url == SERIES_LINKS[index + 1]
                assert f'href="{SERIES_LINKS[index + 1]}"' in issue.html
        again = run(
            FEEDS / "squarespace.xml",
            settings_.articles_path,
            newsletter.sessions,
            series="massage-and-wellbeing",
        )
        assert again.added == () and again.unchanged == 3

        # hostile markup from a feed never reaches a rendered email
        hostile = run(FEEDS / "hostile.xml", settings_.articles_path, series="hostile")
        issue = newsletter.render(hostile.added[0].slug)
        assert "Kept text one." in issue.html and "Kept text two" in issue.html
        # The email design has <style> and <meta> of its own: no more than a benign issue.
        benign = newsletter.render(series[1].slug).html.lower()
        for tag in ("<style", "<meta"):
            assert issue.html.lower().count(tag) == benign.count(tag)
        for part in (issue.html, issue.text, issue.subject, issue.preheader):
            found = IN_EMAIL.search(part)
            assert found is None, part[max(0, found.start() - 200) : found.end() + 200]
    finally:
        newsletter.close()


def test_the_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from pipeline.cli import main

    config = copy_sample_folder(tmp_path / "clinic")
    for path in (tmp_path / "clinic" / "articles").glob("*.md"):
        path.unlink()
    args = ["--config", str(config), "import-feed", str(FEEDS / "squarespace.xml")]
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("NEWSLETTER_SECRET_KEY", "feed-test")
        assert main([*args, "--series", "massage-and-wellbeing"]) == 0
        first = capsys.readouterr()
        assert main([*args, "--series", "massage-and-wellbeing"]) == 0
        second = capsys.readouterr()
        assert main([*args[:-1], str(tmp_path / "missing.xml"), "--series", "s"]) == 1
        missing = capsys.readouterr()
        assert main([*args[:-1], str(FEEDS / "missing-fields.xml"), "--series", "s"]) == 0
        partial = capsys.readouterr()
        assert main([*args, "--series", "s", "--status", "sent"]) == 1
        bad_option = capsys.readouterr()
    assert "added    hip-pain-massage-therapy.md (part 2)" in first.out
    assert first.err == ""
    assert "0 added" in second.out and "3 unchanged" in second.out
    assert (
        missing.err.strip()
        == f"{tmp_path / 'missing.xml'}: no such file (give a feed file or an http(s) URL)"
    )
    assert len(partial.err.strip().splitlines()) == 2 and "1 added" in partial.out
    assert bad_option.err.strip() == "error: --status must be queued or draft, not 'sent'"
