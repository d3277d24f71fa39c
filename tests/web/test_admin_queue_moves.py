"""The queue page's Move up/down and draft <-> queued buttons (issue 15) through the app
in-process: the files are the source of truth, so every test reads them back and compares
the page's new order with :func:`queue_order` over the files as written."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from pipeline.content.articles import load_articles
from pipeline.content.queue import queue_order
from pipeline.newsletter import Newsletter
from pipeline.web.app import create_app
from tests.helpers import FixedClock
from tests.web.admin_helpers import OWNER, WRITER, signed_in, staffed_newsletter
from tests.web.helpers import csrf_from, web_client

pytestmark = pytest.mark.anyio

#: Articles added to the sample's three-part series (no send_after): one undated
#: standalone, two dated ones (one with a time and a comment, one a bare date).
EXTRA = {
    "a-standalone.md": '---\ntitle: "Stretching at Your Desk"\nsummary: "Five stretches."\n'
    "author: Alan\n---\nStretch.\n",
    "b-dated.md": '---\ntitle: "Sleep and Recovery"\nsummary: "Rest."\nauthor: Alan\n'
    "send_after: 2026-12-20 09:00  # after the holidays notice\n---\nSleep.\n",
    "c-dated.md": '---\ntitle: "Posture Basics"\nsummary: "Sit well."\nauthor: Alan\n'
    "send_after: 2026-12-27\n---\nPosture.\n",
}
SERIES = ["massage-and-mental-health", "hip-pain-massage-therapy", "massage-guns-are-they-worth-it"]


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


@pytest.fixture
def newsletter(tmp_path: Path, clock: FixedClock) -> Newsletter:
    nl = staffed_newsletter(tmp_path / "clinic", clock)
    for name, text in EXTRA.items():
        (nl.settings.articles_path / name).write_text(text, encoding="utf-8")
    return nl


@pytest.fixture
def app(newsletter: Newsletter) -> FastAPI:
    return create_app(newsletter)


def files(newsletter: Newsletter) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(newsletter.settings.articles_path.glob("*.md"))}


def file_order(newsletter: Newsletter) -> list[str]:
    """The send order the files now mean, computed apart from the page."""
    settings = newsletter.settings
    articles = load_articles(settings.articles_path, settings.schedule.tz).articles
    return [a.slug for a in queue_order(articles, newsletter.ledger.sent_slugs())]


def page_order(html: str) -> list[str]:
    """The order the queue page shows (its rows' anchors)."""
    return re.findall(r'<td id="q-([a-z0-9-]+)"', html)


def order_token(html: str) -> str:
    found = re.search(r'name="order" value="([0-9a-f]+)"', html)
    assert found is not None
    return found.group(1)


async def post(
    client: httpx.AsyncClient, slug: str, action: str, **data: str
) -> tuple[httpx.Response, str]:
    page = await client.get("/admin")
    form = {"csrf_token": csrf_from(page.text), "order": order_token(page.text), **data}
    return await client.post(f"/admin/queue/{slug}/{action}", data=form), page.text


def changed_lines(before: bytes, after: bytes) -> tuple[list[str], list[str]]:
    old, new = before.decode().splitlines(), after.decode().splitlines()
    return [line for line in old if line not in new], [line for line in new if line not in old]


async def test_moves_write_send_after_and_the_page_shows_queue_order(
    app: FastAPI, newsletter: Newsletter
) -> None:
    start = ["a-standalone", *SERIES, "b-dated", "c-dated"]
    assert file_order(newsletter) == start
    async with signed_in(app, WRITER) as writer:
        assert page_order((await writer.get("/admin")).text) == start
        before = files(newsletter)
        # Both dated: they swap their dates, each as the other's file wrote it.
        answer, _ = await post(writer, "c-dated", "move", direction="up")
        assert answer.status_code == 303
        assert answer.headers["location"] == "/admin?moved=c-dated#q-c-dated"
        expected = ["a-standalone", *SERIES, "c-dated", "b-dated"]
        assert file_order(newsletter) == expected
        after = files(newsletter)
        assert changed_lines(before["c-dated.md"], after["c-dated.md"]) == (
            ["send_after: 2026-12-27"],
            ["send_after: 2026-12-20 09:00"],
        )
        assert changed_lines(before["b-dated.md"], after["b-dated.md"]) == (
            ["send_after: 2026-12-20 09:00  # after the holidays notice"],
            ["send_after: 2026-12-27"],
        )
        assert {n: b for n, b in after.items() if n not in ("b-dated.md", "c-dated.md")} == {
            n: b for n, b in before.items() if n not in ("b-dated.md", "c-dated.md")
        }
        page = await writer.get("/admin?moved=c-dated")
        assert page_order(page.text) == expected
        assert "Posture Basics" in page.text and 'role="status"' in page.text

        # The undated standalone below part 1 would need parts 2 and 3 dated too (undated
        # ones sort first): refused, with the way out, nothing written.
        before = files(newsletter)
        answer, _ = await post(writer, "a-standalone", "move", direction="down")
        assert answer.status_code == 409
        assert "without moving other articles too" in answer.text
        assert files(newsletter) == before
        assert page_order(answer.text) == expected


async def test_a_dated_article_moves_above_an_undated_one(
    app: FastAPI, newsletter: Newsletter, clock: FixedClock
) -> None:
    async with signed_in(app, OWNER) as owner:
        before = files(newsletter)
        answer, _ = await post(owner, "b-dated", "move", direction="up")
        assert answer.status_code == 303, answer.text
        expected = ["a-standalone", *SERIES[:2], "b-dated", SERIES[2], "c-dated"]
        assert file_order(newsletter) == expected
        assert page_order((await owner.get("/admin")).text) == expected
        after = files(newsletter)
        changed = {n for n in after if after[n] != before[n]}
        assert changed == {"b-dated.md", "massage-guns-are-they-worth-it.md"}
        # The sample's clock is 2026-11-25 09:00 UTC; the clinic is in Australia (+11).
        guns_old, guns_new = changed_lines(
            before["massage-guns-are-they-worth-it.md"], after["massage-guns-are-they-worth-it.md"]
        )
        assert guns_old == [] and len(guns_new) == 1 and guns_new[0].startswith("send_after: ")
        b_old, b_new = changed_lines(before["b-dated.md"], after["b-dated.md"])
        assert len(b_old) == len(b_new) == 1 and b_new[0].startswith("send_after: 2026-11-25")


async def test_a_part_cannot_go_before_an_earlier_part(
    app: FastAPI, newsletter: Newsletter
) -> None:
    async with signed_in(app, WRITER) as writer:
        before = files(newsletter)
        for slug, direction in ((SERIES[1], "up"), (SERIES[0], "down")):
            answer, _ = await post(writer, slug, "move", direction=direction)
            assert answer.status_code == 409
            assert "Nothing was changed" in answer.text
            assert "the parts of a series go out in order" in answer.text
        first, _ = await post(writer, "a-standalone", "move", direction="up")
        assert first.status_code == 409 and "already the first" in first.text
        assert files(newsletter) == before


async def test_draft_and_back_changes_only_the_status_line(
    app: FastAPI, newsletter: Newsletter
) -> None:
    async with signed_in(app, WRITER) as writer:
        before = files(newsletter)
        answer, _ = await post(writer, "c-dated", "status", status="draft")
        assert answer.status_code == 303
        assert answer.headers["location"] == "/admin?moved=c-dated#d-c-dated"
        drafted = files(newsletter)
        assert changed_lines(before["c-dated.md"], drafted["c-dated.md"]) == (
            [],
            ["status: draft"],
        )
        assert "c-dated" not in file_order(newsletter)
        page = await writer.get("/admin")
        assert "c-dated" not in page_order(page.text)
        assert 'id="d-c-dated"' in page.text and ">Queue it<" in page.text
        answer, _ = await post(writer, "c-dated", "status", status="queued")
        assert answer.status_code == 303
        assert changed_lines(before["c-dated.md"], files(newsletter)["c-dated.md"]) == (
            [],
            ["status: queued"],
        )
        assert file_order(newsletter)[-1] == "c-dated"


async def test_check_problems_stay_beside_a_draft(app: FastAPI, newsletter: Newsletter) -> None:
    path = newsletter.settings.articles_path / "b-dated.md"
    # Part 5 of the series without a part 4: `check` reports a gap in this file.
    path.write_text(
        path.read_text().replace("author: Alan\n", "series: massage-and-wellbeing\npart: 5\n"),
        encoding="utf-8",
    )
    async with signed_in(app, WRITER) as writer:
        answer, page = await post(writer, "b-dated", "status", status="draft")
        assert answer.status_code == 303
        row = page[page.index('id="q-b-dated"') :]
        assert 'aria-label="Problems in b-dated"' in row[: row.index("</tr>")]
        assert "has no part 4" in row[: row.index("</tr>")]
        page = (await writer.get("/admin")).text
        draft = page[page.index('id="d-b-dated"') :]
        assert 'aria-label="Problems in b-dated"' in draft[: draft.index("</li>\n")]


async def test_a_stale_page_anonymous_and_cross_site_posts_change_nothing(
    app: FastAPI, newsletter: Newsletter
) -> None:
    before = files(newsletter)
    async with signed_in(app, WRITER) as writer:
        page = (await writer.get("/admin")).text
        token, order = csrf_from(page), order_token(page)
        for data in ({"order": order}, {"order": order, "csrf_token": "forged"}):
            refused = await writer.post(
                "/admin/queue/c-dated/move", data={**data, "direction": "up"}
            )
            assert refused.status_code == 403
        cross = await writer.post(
            "/admin/queue/c-dated/status",
            data={"csrf_token": token, "order": order, "status": "draft"},
            headers={"Origin": "https://evil.example"},
        )
        assert cross.status_code == 403
        # Someone saves an article in a text editor after the page was loaded.
        other = newsletter.settings.articles_path / "a-standalone.md"
        other.write_text(other.read_text() + "More.\n", encoding="utf-8")
        before = files(newsletter)
        stale = await writer.post(
            "/admin/queue/c-dated/move",
            data={"csrf_token": token, "order": order, "direction": "up"},
        )
        assert stale.status_code == 409 and "The queue changed" in stale.text
        assert files(newsletter) == before
    async with web_client(app) as anon:
        answer = await anon.post(
            "/admin/queue/c-dated/move", data={"csrf_token": token, "direction": "up"}
        )
        assert answer.status_code == 303 and answer.headers["location"].startswith("/admin/login")
    assert files(newsletter) == before


async def test_the_queue_is_also_shown_grouped_by_series_in_part_order(
    app: FastAPI, newsletter: Newsletter
) -> None:
    path = newsletter.settings.articles_path / f"{SERIES[2]}.md"
    path.write_text(path.read_text().replace("\ntitle:", "\nstatus: draft\ntitle:", 1))
    async with signed_in(app, WRITER) as writer:
        html = (await writer.get("/admin")).text
    grouped = html[html.index("<h2>By series</h2>") :]
    table = grouped[: grouped.index("</table>")]
    assert "<caption>Massage and Wellbeing</caption>" in table
    # Every part, in part order, with its state; a standalone article is not listed.
    assert [re.search(rf'href="/admin/articles/{s}/edit"', table) is not None for s in SERIES] == [
        True,
        True,
        True,
    ]
    positions = [table.index(f"/admin/articles/{slug}/edit") for slug in SERIES]
    assert positions == sorted(positions)
    rows = table.split("<tr>")[2:]
    assert [re.search(r'class="badge">(\w+)<', row).group(1) for row in rows] == [  # type: ignore[union-attr]
        "queued",
        "queued",
        "draft",
    ]
    assert "a-standalone" not in table
