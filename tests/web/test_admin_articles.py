"""Write, Preview and test (issue 15): the dashboard's article form through the app
in-process. The files are the source of truth, so every test reads them back."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from pipeline.cli.content import collect_problems
from pipeline.newsletter import Newsletter
from tests.helpers import SAMPLE_SLUG, FixedClock
from tests.web.admin_helpers import OWNER, WRITER, signed_in, staffed_newsletter
from tests.web.helpers import csrf_from, read_eml, web_client

pytestmark = pytest.mark.anyio

NEW_ARTICLE = {
    "slug": "",
    "title": "Shoulder Pain: What Helps",
    "series": "massage-and-wellbeing",
    "part": "4",
    "summary": "Why shoulders ache and what a massage can do.",
    "author": "Alan",
    "image": "",
    "send_date": "2026-12-15",
    "send_time": "",
    "status": "queued",
    # A browser sends a textarea's lines with CRLF.
    "body": "Shoulders carry a lot.\r\n\r\n## What helps\r\n\r\n"
    "Gentle **movement** and massage.\r\n",
}


@pytest.fixture
def newsletter(tmp_path: Path, clock: FixedClock) -> Newsletter:
    return staffed_newsletter(tmp_path / "clinic", clock)


class _Form(HTMLParser):
    """What a browser would post from the page's form with id-less defaults: every named
    input, textarea and select, as the page shows them."""

    def __init__(self) -> None:
        super().__init__()
        self.fields: dict[str, str] = {}
        self._textarea: str | None = None
        self._select: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        name = a.get("name")
        if tag == "input" and name and a.get("type") not in ("submit", "button"):
            self.fields[name] = a.get("value") or ""
        elif tag == "textarea" and name:
            self._textarea = name
            self.fields[name] = ""
        elif tag == "select" and name:
            self._select = name
        elif (
            tag == "option"
            and self._select is not None
            and (self._select not in self.fields or "selected" in a)
        ):
            self.fields[self._select] = a.get("value") or ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "textarea":
            self._textarea = None
        elif tag == "select":
            self._select = None

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            self.fields[self._textarea] += data


def form_of(html: str) -> dict[str, str]:
    """The article form's fields as a browser would submit them untouched."""
    parser = _Form()
    form = html[html.index('<form method="post" action="/admin/articles') :]
    parser.feed(form[: form.index("</form>")])
    fields = parser.fields
    # HTML drops the one newline right after <textarea>; a browser sends CRLF line ends.
    for name in ("body", "summary"):
        fields[name] = fields[name].removeprefix("\n").replace("\n", "\r\n")
    return fields


def article_path(newsletter: Newsletter, slug: str) -> Path:
    return newsletter.settings.articles_path / f"{slug}.md"


async def new_article(client: httpx.AsyncClient, **changes: str) -> httpx.Response:
    page = await client.get("/admin/articles/new")
    assert page.status_code == 200
    data = {**NEW_ARTICLE, **changes, "csrf_token": csrf_from(page.text)}
    return await client.post("/admin/articles/new", data=data)


# -- create -------------------------------------------------------------------------------


async def test_a_writer_creates_an_article_file_as_a_person_would(
    app: FastAPI, newsletter: Newsletter
) -> None:
    async with signed_in(app, WRITER) as client:
        saved = await new_article(client)
        assert saved.status_code == 303
        assert saved.headers["location"] == "/admin/articles/shoulder-pain-what-helps/edit?saved=1"
        path = article_path(newsletter, "shoulder-pain-what-helps")
        assert path.read_text(encoding="utf-8") == (
            "---\n"
            'title: "Shoulder Pain: What Helps"\n'
            "series: massage-and-wellbeing\n"
            "part: 4\n"
            'summary: "Why shoulders ache and what a massage can do."\n'
            "author: Alan\n"
            "send_after: 2026-12-15\n"
            "status: queued\n"
            "---\n"
            "Shoulders carry a lot.\n\n## What helps\n\nGentle **movement** and massage.\n"
        )
        assert collect_problems(newsletter.settings)[1] == []  # `newsletter check` is clean
        article = newsletter.article("shoulder-pain-what-helps")
        assert article.part == 4 and article.send_after is not None
        assert article.send_after.isoformat() == "2026-12-15T00:00:00+11:00"  # clinic time
        page = await client.get(saved.headers["location"])
        assert "Saved articles/shoulder-pain-what-helps.md" in page.text
        queue = await client.get("/admin")
        assert ">shoulder-pain-what-helps<" in queue.text
        # The same file name again is refused, and the first file stays.
        before = path.read_bytes()
        again = await new_article(client, title="Another", slug="shoulder-pain-what-helps")
        assert again.status_code == 422 and "already exists" in again.text
        assert path.read_bytes() == before


async def test_an_invalid_article_is_not_written_and_problems_sit_by_their_field(
    app: FastAPI, newsletter: Newsletter
) -> None:
    before = sorted(p.name for p in newsletter.settings.articles_path.iterdir())
    async with signed_in(app, WRITER) as client:
        answer = await new_article(client, part="two", image="not a url", slug="bad-one")
        assert answer.status_code == 422
        page = answer.text
        # check's own words, as path:line: message, and each next to its field.
        assert "articles/bad-one.md:4: part must be" in page
        part = re.search(r'id="part-problems">(.*?)</ul>', page, re.S)
        image = re.search(r'id="image-problems">(.*?)</ul>', page, re.S)
        assert part is not None and "line 4: part must be" in part.group(1)
        assert image is not None and "image must be an http:// or https:// address" in image.group(
            1
        )
        assert 'aria-describedby="part-problems"' in page
        # What the person typed is all still there.
        assert 'value="not a url"' in page and "Gentle **movement** and massage." in page
        missing = await new_article(client, title="", slug="untitled")
        assert missing.status_code == 422
        title = re.search(r'id="title-problems">(.*?)</ul>', missing.text, re.S)
        assert title is not None and "missing title" in title.group(1)
    assert sorted(p.name for p in newsletter.settings.articles_path.iterdir()) == before


# -- edit ---------------------------------------------------------------------------------


async def test_an_untouched_article_resaved_is_byte_identical(
    app: FastAPI, newsletter: Newsletter
) -> None:
    async with signed_in(app, WRITER) as client:
        for path in sorted(newsletter.settings.articles_path.glob("*.md")):
            before, mtime = path.read_bytes(), path.stat().st_mtime_ns
            page = await client.get(f"/admin/articles/{path.stem}/edit")
            assert page.status_code == 200
            saved = await client.post(f"/admin/articles/{path.stem}/edit", data=form_of(page.text))
            assert saved.status_code == 303, saved.text
            assert path.read_bytes() == before and path.stat().st_mtime_ns == mtime


async def test_an_edit_changes_only_the_lines_that_changed(
    app: FastAPI, newsletter: Newsletter
) -> None:
    path = article_path(newsletter, SAMPLE_SLUG)
    before = path.read_text(encoding="utf-8")
    async with signed_in(app, WRITER) as client:
        page = await client.get(f"/admin/articles/{SAMPLE_SLUG}/edit")
        fields = form_of(page.text)
        assert fields["title"] == "Hip Pain & How Massage Therapy Helps"
        fields.update(title="Hip Pain: How Massage Helps", status="draft", send_date="2026-12-01")
        fields["send_time"] = "09:30"
        fields["body"] = fields["body"].replace("centuries", "thousands of years")
        saved = await client.post(f"/admin/articles/{SAMPLE_SLUG}/edit", data=fields)
        assert saved.status_code == 303
    after = path.read_text(encoding="utf-8")
    expected = before.replace(
        'title: "Hip Pain & How Massage Therapy Helps"', 'title: "Hip Pain: How Massage Helps"'
    ).replace("author: Alan\n", "author: Alan\nsend_after: 2026-12-01 09:30\nstatus: draft\n")
    assert after == expected.replace("centuries", "thousands of years")
    article = newsletter.article(SAMPLE_SLUG)
    assert article.status == "draft" and article.title == "Hip Pain: How Massage Helps"


async def test_a_stale_save_is_refused_and_the_text_kept(
    app: FastAPI, newsletter: Newsletter
) -> None:
    path = article_path(newsletter, SAMPLE_SLUG)
    async with signed_in(app, WRITER) as writer, signed_in(app, OWNER) as owner:
        mine = form_of((await writer.get(f"/admin/articles/{SAMPLE_SLUG}/edit")).text)
        theirs = form_of((await owner.get(f"/admin/articles/{SAMPLE_SLUG}/edit")).text)
        theirs["summary"] = "The owner's summary."
        assert (
            await owner.post(f"/admin/articles/{SAMPLE_SLUG}/edit", data=theirs)
        ).status_code == 303
        saved_by_owner = path.read_bytes()
        mine["body"] = "My long rewrite, which must not be lost.\r\n"
        refused = await writer.post(f"/admin/articles/{SAMPLE_SLUG}/edit", data=mine)
        assert refused.status_code == 409
        assert "changed since you opened it" in refused.text
        assert "My long rewrite, which must not be lost." in refused.text
        assert f'href="/admin/articles/{SAMPLE_SLUG}/edit"' in refused.text
        assert path.read_bytes() == saved_by_owner
        # Saving again from the same (stale) form is refused again: nothing is overwritten.
        again = await writer.post(f"/admin/articles/{SAMPLE_SLUG}/edit", data=form_of(refused.text))
        assert again.status_code == 409 and path.read_bytes() == saved_by_owner


# -- who may, and forms from elsewhere ----------------------------------------------------


async def test_anonymous_and_cross_site_requests_change_nothing(
    app: FastAPI, newsletter: Newsletter
) -> None:
    folder = newsletter.settings.articles_path
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    async with web_client(app) as anon:
        for method, path in (
            ("GET", "/admin/articles/new"),
            ("POST", "/admin/articles/new"),
            ("GET", f"/admin/articles/{SAMPLE_SLUG}/edit"),
            ("POST", f"/admin/articles/{SAMPLE_SLUG}/edit"),
            ("GET", f"/admin/articles/{SAMPLE_SLUG}/preview"),
            ("POST", f"/admin/articles/{SAMPLE_SLUG}/test-send"),
        ):
            answer = await anon.request(method, path, data={**NEW_ARTICLE, "csrf_token": "x"})
            assert answer.status_code == 303, (method, path)
            assert answer.headers["location"].startswith("/admin/login")
    async with signed_in(app, OWNER) as owner:
        page = await owner.get(f"/admin/articles/{SAMPLE_SLUG}/edit")
        fields = {**form_of(page.text), "title": "Changed from elsewhere"}
        for data in ({**fields, "csrf_token": ""}, {**fields, "csrf_token": "forged"}):
            assert (
                await owner.post(f"/admin/articles/{SAMPLE_SLUG}/edit", data=data)
            ).status_code == 403
        cross = await owner.post(
            "/admin/articles/new",
            data=NEW_ARTICLE | {"csrf_token": fields["csrf_token"]},
            headers={"Origin": "https://evil.example"},
        )
        assert cross.status_code == 403
        test_send = await owner.post(f"/admin/articles/{SAMPLE_SLUG}/test-send", data={})
        assert test_send.status_code == 403
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    assert not (newsletter.settings.outbox_path / f"test-{SAMPLE_SLUG}").exists()


# -- preview and test ---------------------------------------------------------------------


async def test_preview_of_the_unsaved_form_writes_nothing(
    app: FastAPI, newsletter: Newsletter
) -> None:
    folder = newsletter.settings.articles_path
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    async with signed_in(app, WRITER) as client:
        page = await client.get(f"/admin/articles/{SAMPLE_SLUG}/edit")
        fields = {**form_of(page.text), "title": "A Title Not Yet Saved"}
        shown = await client.post(f"/admin/articles/{SAMPLE_SLUG}/preview", data=fields)
        assert shown.status_code == 200
        frames = re.findall(
            r'<iframe title="The email: ([^"]+)" width="(\d+)"[^>]*srcdoc="([^"]*)"', shown.text
        )
        assert [(label, width) for label, width, _ in frames] == [
            ("Phone, 375 px, light", "375"),
            ("Phone, 375 px, dark", "375"),
            ("Desktop, 1280 px, light", "1280"),
            ("Desktop, 1280 px, dark", "1280"),
        ]
        for label, _width, srcdoc in frames:
            assert "A Title Not Yet Saved" in srcdoc
            assert ("@media all" in srcdoc) == label.endswith("dark")  # the scheme is forced
        text_part = re.search(r'<pre class="text-part"[^>]*>(.*?)</pre>', shown.text, re.S)
        assert text_part is not None and "A Title Not Yet Saved" in text_part.group(1)
        assert 'value="A Title Not Yet Saved"' in shown.text  # the form is kept as typed
        # A new article's form previews too, before it has a file.
        token = csrf_from(shown.text)
        fresh = await client.post(
            "/admin/articles/preview", data={**NEW_ARTICLE, "csrf_token": token}
        )
        assert fresh.status_code == 200 and fresh.text.count("<iframe") == 4
        assert "Shoulder Pain: What Helps" in fresh.text
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


async def test_send_a_test_to_me_through_the_outbox(app: FastAPI, newsletter: Newsletter) -> None:
    outbox = newsletter.settings.outbox_path
    async with signed_in(app, WRITER) as client:
        page = await client.get(f"/admin/articles/{SAMPLE_SLUG}/preview")
        assert page.status_code == 200 and page.text.count("<iframe") == 4
        sent = await client.post(
            f"/admin/articles/{SAMPLE_SLUG}/test-send", data={"csrf_token": csrf_from(page.text)}
        )
        assert sent.status_code == 200
        assert (
            f"A test copy went to <strong>{WRITER}</strong> through the outbox folder" in sent.text
        )
    [eml] = [p for p in outbox.rglob("*.eml") if WRITER in p.name]
    message = read_eml(eml)
    assert message["To"] == WRITER
    assert message["Subject"] == "Hip Pain & How Massage Therapy Helps"
    assert newsletter.status() == []  # outside the ledger: no campaign
