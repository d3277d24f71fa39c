"""Feed formats: RSS 2.0, Atom and the clinic's Squarespace feed read from files.

Each entry's fields become front matter, its HTML a Markdown body (or sanitized HTML
where Markdown would lose content), and relative links resolve to full addresses.
"""

from __future__ import annotations

import re
from pathlib import Path

from pipeline.content.articles import read_article
from pipeline.feeds import html_to_body, sanitize_html
from pipeline.render import markdown_to_html
from tests.feeds.feed_helpers import FEEDS, SERIES_LINKS, SYDNEY, run

#: The clinic's real article, kept in the repository.
SEED = Path(__file__).resolve().parents[1] / "data" / "seed" / "hip-pain-massage-therapy.txt"


def words(text: str) -> str:
    """Text without markup, entities or spacing differences, for comparing content."""
    plain = re.sub(r"<[^>]+>", " ", text)
    plain = plain.replace("&amp;", "&").replace("&#x27;", "'").replace("&quot;", '"')
    return " ".join(re.sub(r"[*\\]", "", plain).split())


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
