"""The subscribers page: counts by state, and search by part of an address, paged."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from pipeline.newsletter import Newsletter
from pipeline.subscribers import import_csv, remove_subscriber
from pipeline.web.admin.subscribers import PAGE_SIZE
from tests.web.admin_subscribers.helpers import PRIYA, SAM, id_of

pytestmark = pytest.mark.anyio


def person_links(html: str) -> list[str]:
    """The person pages a page links to, in order."""
    return re.findall(r'href="(/admin/subscribers/\d+)"', html)


# -- counts and search ---------------------------------------------------------------------


async def test_counts_by_state(owner: httpx.AsyncClient, newsletter: Newsletter) -> None:
    remove_subscriber(newsletter.sessions, PRIYA)
    page = (await owner.get("/admin/subscribers")).text
    caption = re.search(r"<caption>Subscribers by state \((\d+) in all\)</caption>", page)
    assert caption is not None and int(caption.group(1)) == 5
    rows = dict(re.findall(r'<tr><td>(\w+)</td><td class="num">(\d+)</td></tr>', page))
    assert rows == {
        "pending": "0",
        "active": "4",
        "unsubscribed": "1",
        "bounced": "0",
        "complained": "0",
    }


async def test_search_by_part_of_an_address_in_any_case(
    owner: httpx.AsyncClient, newsletter: Newsletter
) -> None:
    page = (await owner.get("/admin/subscribers", params={"q": "  SHARMA "})).text
    assert person_links(page) == [f"/admin/subscribers/{id_of(newsletter, PRIYA)}"]
    assert PRIYA in page and "Priya Sharma" in page
    everyone_at_com = (await owner.get("/admin/subscribers", params={"q": ".COM"})).text
    found = re.findall(r'<a href="/admin/subscribers/\d+">([^<]+)</a>', everyone_at_com)
    assert found == sorted(found) and PRIYA in found and SAM in found
    assert all(".com" in address for address in found) and "jordan.lee@example.org" not in found
    # The owner's % and _ are letters, not wildcards.
    for literal in ("%", "sam_nguyen"):
        none = (await owner.get("/admin/subscribers", params={"q": literal})).text
        assert person_links(none) == [] and "Nobody's address contains" in none
    # What was typed is shown back escaped, never as markup.
    typed = (await owner.get("/admin/subscribers", params={"q": "<b>x"})).text
    assert "<b>x" not in typed and "&lt;b&gt;x" in typed


async def test_search_results_are_paged(
    owner: httpx.AsyncClient, newsletter: Newsletter, tmp_path: Path
) -> None:
    many = PAGE_SIZE + 7
    csv_file = tmp_path / "many.csv"
    csv_file.write_text(
        "email\n" + "".join(f"reader{n:03}@paged.example\n" for n in range(many)),
        encoding="utf-8",
    )
    import_csv(newsletter.sessions, csv_file)
    first = (await owner.get("/admin/subscribers", params={"q": "@PAGED."})).text
    assert f"{many} addresses contain" in first and "page 1 of 2" in first
    assert len(person_links(first)) == PAGE_SIZE and "reader000@paged.example" in first
    assert 'href="/admin/subscribers?q=%40PAGED.&amp;page=2"' in first
    second = (await owner.get("/admin/subscribers", params={"q": "@PAGED.", "page": 2})).text
    assert len(person_links(second)) == 7 and f"reader{many - 1:03}@paged.example" in second
    assert "reader000@paged.example" not in second and "page=1" in second
    assert set(person_links(first)).isdisjoint(person_links(second))
    # A page past the end shows the last one; a control character is not searched for.
    past = await owner.get("/admin/subscribers", params={"q": "@PAGED.", "page": 10**30})
    assert past.status_code == 200 and person_links(past.text) == person_links(second)
    nul = await owner.get("/admin/subscribers", params={"q": "reader000\x00"})
    assert nul.status_code == 200 and len(person_links(nul.text)) == 1
    assert (await owner.get("/admin/subscribers/a%00b@example.com")).status_code == 404
