"""Series neighbours, archive links, the send queue and series warnings."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.content.articles import Article, ArticleStatus, load_articles
from pipeline.content.queue import next_due, queue_order
from pipeline.content.series import (
    SeriesLink,
    SeriesNav,
    article_url,
    series_nav,
    series_problems,
)

SYDNEY = ZoneInfo("Australia/Sydney")
BASE = "https://news.example.com"
REPO = Path(__file__).resolve().parents[2]


def make(
    slug: str,
    series: str | None = None,
    part: int | None = None,
    *,
    status: ArticleStatus = "queued",
    send_after: datetime | None = None,
    canonical_url: str | None = None,
) -> Article:
    return Article(
        slug=slug,
        title=slug.replace("-", " ").title(),
        path=Path(f"{slug}.md"),
        body_markdown="Body.\n",
        series=series,
        part=part,
        status=status,
        send_after=send_after,
        canonical_url=canonical_url,
    )


def at(day: int) -> datetime:
    return datetime(2026, 12, day, 9, 0, tzinfo=SYDNEY)


def slugs(articles: list[Article]) -> list[str]:
    return [article.slug for article in articles]


# --- article_url ---------------------------------------------------------------------


def test_article_url_prefers_canonical_url() -> None:
    article = make("hip-pain", canonical_url="https://www.cloudformmassage.com.au/blog/hip")
    assert article_url(article, BASE) == "https://www.cloudformmassage.com.au/blog/hip"


def test_article_url_falls_back_to_the_archive() -> None:
    assert article_url(make("hip-pain"), BASE) == f"{BASE}/archive/hip-pain"
    assert article_url(make("hip-pain"), BASE + "/") == f"{BASE}/archive/hip-pain"


# --- series_nav ----------------------------------------------------------------------


def test_standalone_article_has_no_series_nav() -> None:
    article = make("standalone")
    assert series_nav(article, [article], sent_slugs=(), base_url=BASE) is None


def test_sample_hip_pain_article_links_both_ways() -> None:
    articles = load_articles(REPO / "articles", SYDNEY).articles
    hip = next(article for article in articles if article.slug == "hip-pain-massage-therapy")
    nav = series_nav(
        hip, articles, sent_slugs={"massage-and-mental-health"}, base_url=BASE, planned=None
    )
    assert nav == SeriesNav(
        series="massage-and-wellbeing",
        part=2,
        position=2,
        total=3,
        previous=SeriesLink(
            slug="massage-and-mental-health",
            title="Massage & Mental Health",
            url=f"{BASE}/archive/massage-and-mental-health",
            sent=True,
        ),
        next=SeriesLink(
            slug="massage-guns-are-they-worth-it",
            title="Massage Guns, Are they worth it?",
            url=f"{BASE}/archive/massage-guns-are-they-worth-it",
            sent=False,
        ),
    )


def test_first_part_has_no_previous_and_last_part_has_no_next() -> None:
    one, two, three = make("one", "s", 1), make("two", "s", 2), make("three", "s", 3)
    articles = [three, one, two]  # input order does not matter
    first = series_nav(one, articles, sent_slugs=(), base_url=BASE)
    last = series_nav(three, articles, sent_slugs=(), base_url=BASE)
    assert first is not None and last is not None
    assert first.previous is None and first.next is not None and first.next.slug == "two"
    assert (first.position, first.total) == (1, 3)
    assert last.next is None and last.previous is not None and last.previous.slug == "two"
    assert (last.position, last.total) == (3, 3)


def test_only_article_in_a_series_has_no_neighbours() -> None:
    only = make("only", "s", 1)
    nav = series_nav(only, [only, make("elsewhere", "other", 2)], sent_slugs=(), base_url=BASE)
    assert nav is not None
    assert (nav.previous, nav.next, nav.position, nav.total) == (None, None, 1, 1)


def test_gap_in_parts_is_skipped_over() -> None:
    one, three = make("one", "s", 1), make("three", "s", 3)
    nav = series_nav(one, [one, three], sent_slugs=(), base_url=BASE)
    assert nav is not None and nav.next is not None
    assert nav.next.slug == "three"
    back = series_nav(three, [one, three], sent_slugs=(), base_url=BASE)
    assert back is not None and back.previous is not None and back.previous.slug == "one"
    assert (back.part, back.position, back.total) == (3, 2, 2)


def test_drafts_are_skipped_as_neighbours() -> None:
    one, three = make("one", "s", 1), make("three", "s", 3)
    draft = make("two", "s", 2, status="draft")
    nav = series_nav(one, [one, draft, three], sent_slugs=(), base_url=BASE)
    assert nav is not None and nav.next is not None
    assert nav.next.slug == "three"
    assert nav.total == 2


def test_a_draft_being_previewed_sits_by_its_part() -> None:
    one, three = make("one", "s", 1), make("three", "s", 3)
    draft = make("two", "s", 2, status="draft")
    nav = series_nav(draft, [one, draft, three], sent_slugs=(), base_url=BASE)
    assert nav is not None and nav.previous is not None and nav.next is not None
    assert (nav.previous.slug, nav.next.slug, nav.position, nav.total) == ("one", "three", 2, 3)


def test_links_use_canonical_urls_sent_flags_and_planned_dates() -> None:
    one = make("one", "s", 1, canonical_url="https://blog.example.com/one")
    two, three = make("two", "s", 2), make("three", "s", 3)
    nav = series_nav(
        two,
        [one, two, three],
        sent_slugs={"one"},
        base_url=BASE,
        planned={"three": at(8), "unrelated": at(1)},
    )
    assert nav is not None
    assert nav.previous == SeriesLink("one", "One", "https://blog.example.com/one", True, None)
    assert nav.next == SeriesLink("three", "Three", f"{BASE}/archive/three", False, at(8))


# --- queue_order ---------------------------------------------------------------------


def test_queue_skips_drafts_and_sent_articles() -> None:
    articles = [make("a"), make("b", status="draft"), make("c")]
    assert slugs(queue_order(articles, {"c"})) == ["a"]


def test_queue_orders_by_send_after_then_series_part_slug() -> None:
    articles = [
        make("late", send_after=at(20)),
        make("soon", send_after=at(2)),
        make("b-whenever"),
        make("a-whenever"),
        make("s-two", "s", 2),
        make("s-one", "s", 1),
    ]
    # no send_after first; then "" series before "s"; then part, then slug
    assert slugs(queue_order(articles, ())) == [
        "a-whenever",
        "b-whenever",
        "s-one",
        "s-two",
        "soon",
        "late",
    ]


def test_later_part_waits_for_an_earlier_unsent_part() -> None:
    one = make("one", "s", 1, send_after=at(10))
    two = make("two", "s", 2)  # no send_after: would otherwise go first
    other = make("other", send_after=at(5))
    assert slugs(queue_order([one, two, other], ())) == ["other", "one", "two"]


def test_sent_or_draft_earlier_parts_do_not_hold_a_part_back() -> None:
    one = make("one", "s", 1, send_after=at(10))
    two = make("two", "s", 2, status="draft", send_after=at(10))
    three = make("three", "s", 3, send_after=at(1))
    assert slugs(queue_order([one, two, three], {"one"})) == ["three"]
    assert slugs(queue_order([two, three], ())) == ["three"]


def test_holding_back_one_series_leaves_others_alone() -> None:
    articles = [
        make("x-one", "x", 1, send_after=at(10)),
        make("x-two", "x", 2, send_after=at(1)),
        make("y-one", "y", 1, send_after=at(3)),
        make("y-two", "y", 2, send_after=at(4)),
    ]
    assert slugs(queue_order(articles, ())) == ["y-one", "y-two", "x-one", "x-two"]


def test_next_due_never_sends_a_part_before_an_earlier_waiting_part() -> None:
    one = make("one", "s", 1, send_after=at(10))
    two = make("two", "s", 2)
    other = make("other", send_after=at(5))
    queue = queue_order([one, two, other], ())
    assert next_due(queue, at(1)) is None  # two is due, but part 1 is not yet
    assert next_due(queue, at(6)) == other
    assert next_due(queue, at(11)) == other
    assert next_due(queue_order([one, two], ()), at(11)) == one
    assert next_due(queue_order([one, two], {"one"}), at(1)) == two
    assert next_due([], at(1)) is None


_SERIES_ARTICLES = st.lists(
    st.tuples(
        st.sampled_from([None, "a", "b"]),
        st.integers(1, 6),
        st.sampled_from(["queued", "queued", "draft"]),
        st.one_of(st.none(), st.integers(1, 28)),
        st.booleans(),
    ),
    max_size=12,
)


@settings(max_examples=200)
@given(rows=_SERIES_ARTICLES)
def test_queue_order_property(rows: list[tuple[str | None, int, str, int | None, bool]]) -> None:
    articles: list[Article] = []
    sent: set[str] = set()
    for index, (series, part, status, day, was_sent) in enumerate(rows):
        slug = f"n{index}"
        articles.append(
            make(
                slug,
                series,
                part if series else None,
                status="draft" if status == "draft" else "queued",
                send_after=at(day) if day else None,
            )
        )
        if was_sent:
            sent.add(slug)
    queue = queue_order(articles, sent)
    waiting = [a for a in articles if a.status == "queued" and a.slug not in sent]
    # exactly the waiting articles, each once
    assert sorted(slugs(queue)) == sorted(slugs(waiting))
    # within a series, parts never go backwards
    for series in ("a", "b"):
        parts = [a.part or 0 for a in queue if a.series == series]
        assert parts == sorted(parts)


# --- series_problems -----------------------------------------------------------------


def test_sample_series_has_no_problems() -> None:
    assert series_problems(load_articles(REPO / "articles", SYDNEY).articles) == []


def test_gap_in_parts_is_reported_at_the_later_part_line(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("---\ntitle: A\nseries: s\npart: 1\n---\n", encoding="utf-8")
    later = tmp_path / "b.md"
    later.write_text("---\ntitle: B\nseries: s\nauthor: Alan\npart: 4\n---\n", encoding="utf-8")
    (tmp_path / "c.md").write_text("---\ntitle: C\nseries: t\npart: 2\n---\n", encoding="utf-8")
    loaded = load_articles(tmp_path, SYDNEY)
    assert loaded.problems == ()
    assert [str(problem) for problem in series_problems(loaded.articles)] == [
        f"{later}:5: series 's' has no parts 2, 3",
        f"{tmp_path / 'c.md'}:4: series 't' has no part 1",
    ]


def test_queued_part_after_a_draft_part_is_reported() -> None:
    articles = [
        make("one", "s", 1),
        make("two", "s", 2, status="draft"),
        make("three", "s", 3),
    ]
    problems = series_problems(articles)
    # the in-memory paths do not exist, so the line falls back to 1
    assert [str(problem) for problem in problems] == [
        "three.md:1: series 's': part 3 is queued but part 2 is still a draft,"
        " so it would go out first"
    ]


def test_standalone_articles_have_no_series_problems() -> None:
    assert series_problems([make("a"), make("b")]) == []
