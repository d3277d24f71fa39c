"""The queue page (the dashboard's home): articles in send order, each with its problems,
and nothing loaded from anywhere."""

from __future__ import annotations

import re

import pytest
from fastapi import FastAPI

from pipeline.newsletter import Newsletter
from tests.web.admin_helpers import WRITER, signed_in

pytestmark = pytest.mark.anyio

# -- the queue page -----------------------------------------------------------------------


async def test_the_queue_page_lists_articles_in_send_order_with_their_problems(
    app: FastAPI, newsletter: Newsletter
) -> None:
    queue = newsletter.queue()
    assert len(queue) >= 2
    last = queue[-1]
    assert last.part is not None
    path = newsletter.settings.articles_path / f"{last.slug}.md"
    # A gap in the series: `check` reports it against this article, which stays queued.
    path.write_text(
        path.read_text(encoding="utf-8").replace(f"part: {last.part}", f"part: {last.part + 2}"),
        encoding="utf-8",
    )
    async with signed_in(app, WRITER) as client:
        page = (await client.get("/admin")).text
    positions = [page.index(f">{e.slug}<") for e in newsletter.queue()]
    assert len(positions) == len(queue) and positions == sorted(positions)
    problems = re.search(rf'aria-label="Problems in {re.escape(last.slug)}">(.*?)</ul>', page, re.S)
    assert problems is not None and "has no parts" in problems.group(1)
    assert page.count('class="problems"') == 1  # only beside the article it concerns
    assert "<script" not in page
    # Nothing on the page loads from anywhere (links to follow, like the clinic's site, may).
    assert not re.search(r"\ssrc=|url\(|@import|<link[^>]+stylesheet", page)
