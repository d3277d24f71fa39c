"""The dashboard's subscribers section (issue 15): counts, search, a person's page, remove and
forget behind a confirmation, CSV upload with the CLI importer's report, and the export;
through the app in-process (httpx ASGI) on the sample folder with its issue sent."""

from __future__ import annotations

import html
import io
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from pipeline.newsletter import Newsletter
from pipeline.store.models import ErasedAddress, SubscriberStatus
from pipeline.subscribers import export_csv, forget_subscriber, import_csv, remove_subscriber
from pipeline.subscribers.erasure import erasure_digest
from pipeline.subscribers.profile import subscriber_profile
from pipeline.web.admin import subscriber_files
from pipeline.web.admin.subscribers import PAGE_SIZE
from tests.helpers import FixedClock
from tests.subscribers.test_erasure import database_bytes, mentions, rows_mentioning
from tests.web.test_admin import OWNER, WRITER, signed_in, staffed_newsletter
from tests.web.test_web import SECRET, csrf_from, make_newsletter, status_of, subscriber

pytestmark = pytest.mark.anyio

PRIYA = "priya.sharma@example.com"
SAM = "sam.nguyen@example.com"

#: Every route of the section, as (method, path) with a subscriber's id filled in.
SECTION = (
    ("GET", "/admin/subscribers"),
    ("GET", "/admin/subscribers/{id}"),
    ("GET", "/admin/subscribers/{id}/remove"),
    ("POST", "/admin/subscribers/{id}/remove"),
    ("GET", "/admin/subscribers/{id}/forget"),
    ("POST", "/admin/subscribers/{id}/forget"),
    ("GET", "/admin/subscribers/import"),
    ("POST", "/admin/subscribers/import"),
    ("GET", "/admin/subscribers/export.csv"),
)


@pytest.fixture
def newsletter(tmp_path: Path, clock: FixedClock) -> Newsletter:
    """The sample folder (its subscribers imported, the sample issue sent) with two accounts."""
    return staffed_newsletter(tmp_path / "clinic", clock, send=True)


@pytest.fixture
async def owner(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with signed_in(app, OWNER) as client:
        yield client


def id_of(newsletter: Newsletter, address: str) -> int:
    return subscriber(newsletter, address).id


async def token(client: httpx.AsyncClient, path: str = "/admin/subscribers") -> str:
    return csrf_from((await client.get(path)).text)


def person_links(html: str) -> list[str]:
    """The person pages a page links to, in order."""
    return re.findall(r'href="(/admin/subscribers/\d+)"', html)


async def upload(
    client: httpx.AsyncClient, content: bytes, name: str = "clients.csv", csrf: str | None = None
) -> httpx.Response:
    return await client.post(
        "/admin/subscribers/import",
        data={"csrf_token": csrf if csrf is not None else await token(client)},
        files={"file": (name, content, "text/csv")},
    )


# -- who may ------------------------------------------------------------------------------


async def test_a_writer_gets_a_clear_403_on_every_page_and_action(
    app: FastAPI, newsletter: Newsletter
) -> None:
    sam = id_of(newsletter, SAM)
    async with signed_in(app, WRITER) as writer:
        csrf = await token(writer, "/admin")
        for method, path in SECTION:
            answer = await writer.request(
                method, path.format(id=sam), data={"csrf_token": csrf, "email": SAM}
            )
            assert answer.status_code == 403, (method, path)
            assert "Only an owner can do that" in answer.text
    assert status_of(newsletter, SAM) == "active"
    async with signed_in(app, WRITER) as writer:
        queue = (await writer.get("/admin")).text
        assert 'href="/admin/subscribers"' not in queue  # no link to what is refused


async def test_anonymous_requests_go_to_the_login(app: FastAPI, newsletter: Newsletter) -> None:
    sam = id_of(newsletter, SAM)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:8000"
    ) as anon:
        for method, path in SECTION:
            answer = await anon.request(method, path.format(id=sam), data={"email": SAM})
            assert answer.status_code == 303, (method, path)
            assert answer.headers["location"].startswith("/admin/login")
    assert status_of(newsletter, SAM) == "active"


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


# -- a person's page ----------------------------------------------------------------------


async def test_a_persons_page_by_id_or_address(
    owner: httpx.AsyncClient, newsletter: Newsletter
) -> None:
    priya = id_of(newsletter, PRIYA)
    by_id = await owner.get(f"/admin/subscribers/{priya}")
    by_address = await owner.get("/admin/subscribers/Priya.Sharma@Example.com")
    assert by_id.status_code == by_address.status_code == 200
    for page in (by_id.text, by_address.text):
        assert f"<h1>{PRIYA}</h1>" in page and "Priya Sharma" in page and "patient" in page
        assert '<span class="badge">active</span>' in page
        assert "Consent record" in page and "no double opt-in on record" in page
        assert f'href="/admin/subscribers/{priya}/remove"' in page
        assert f'href="/admin/subscribers/{priya}/forget"' in page
    # What she received and what comes next: `subscribers show`'s own profile, on the page.
    profile = subscriber_profile(newsletter, PRIYA)
    assert profile is not None and profile.series
    page = by_id.text
    for progress in profile.series:
        assert f"Series “{progress.series}”" in page
        for got in progress.received:
            row = f"<td>{html.escape(got.title)}</td><td>{got.via}</td>"
            assert f'{row}<td><span class="badge">{got.state}</span>' in page
        if progress.next is not None:
            assert f"<strong>Next:</strong> {html.escape(progress.next.title)}</td>" in page
    sample = re.search(
        r"<td>Hip Pain &amp; How Massage Therapy Helps</td><td>live</td>(.*?)</tr>", page
    )
    assert sample is not None and '<span class="badge">sent</span>' in sample.group(1)
    missing = await owner.get("/admin/subscribers/nobody@example.com")
    assert missing.status_code == 404 and "No such subscriber" in missing.text
    assert (await owner.get("/admin/subscribers/99999")).status_code == 404


# -- remove -------------------------------------------------------------------------------


async def test_remove_asks_first_then_unsubscribes(
    owner: httpx.AsyncClient, newsletter: Newsletter
) -> None:
    priya = id_of(newsletter, PRIYA)
    confirm = await owner.get(f"/admin/subscribers/{priya}/remove")
    assert confirm.status_code == 200 and f"Unsubscribe {PRIYA}?" in confirm.text
    assert f'<input type="hidden" name="email" value="{PRIYA}">' in confirm.text
    csrf = csrf_from(confirm.text)
    # Not through the confirmation (no address): nothing changes, it asks instead.
    unconfirmed = await owner.post(f"/admin/subscribers/{priya}/remove", data={"csrf_token": csrf})
    assert unconfirmed.status_code == 303
    assert unconfirmed.headers["location"] == f"/admin/subscribers/{priya}/remove"
    # Someone else's address with this id: nothing changes either.
    other = await owner.post(
        f"/admin/subscribers/{priya}/remove", data={"csrf_token": csrf, "email": SAM}
    )
    assert other.status_code == 303 and status_of(newsletter, SAM) == "active"
    # No valid CSRF token: refused.
    forged = await owner.post(
        f"/admin/subscribers/{priya}/remove", data={"csrf_token": "forged", "email": PRIYA}
    )
    assert forged.status_code == 403
    assert status_of(newsletter, PRIYA) == "active"

    done = await owner.post(
        f"/admin/subscribers/{priya}/remove", data={"csrf_token": csrf, "email": PRIYA}
    )
    assert done.status_code == 303
    assert done.headers["location"] == f"/admin/subscribers/{priya}?done=removed"
    assert status_of(newsletter, PRIYA) == "unsubscribed"
    page = (await owner.get(done.headers["location"])).text
    assert "Unsubscribed. The record stays" in page and "<dt>Left</dt>" in page
    assert f"/admin/subscribers/{priya}/remove" not in page  # nothing left to remove
    # The record stays, so an upload of the old list leaves them out (the CLI's rule).
    report = (await upload(owner, f"email\n{PRIYA}\n".encode())).text
    assert re.search(r"Left alone:[^<]*</td><td class=\"num\">1<", report)
    assert status_of(newsletter, PRIYA) == "unsubscribed"


# -- forget -------------------------------------------------------------------------------


async def test_forget_asks_first_then_erases_every_trace(
    owner: httpx.AsyncClient, newsletter: Newsletter
) -> None:
    priya = id_of(newsletter, PRIYA)
    assert mentions(database_bytes(newsletter), PRIYA)  # she received the sample issue
    confirm = await owner.get(f"/admin/subscribers/{priya}/forget")
    assert confirm.status_code == 200 and f"Erase {PRIYA} for good?" in confirm.text
    assert "cannot be undone" in confirm.text
    csrf = csrf_from(confirm.text)
    unconfirmed = await owner.post(f"/admin/subscribers/{priya}/forget", data={"csrf_token": csrf})
    assert unconfirmed.headers["location"] == f"/admin/subscribers/{priya}/forget"
    no_token = await owner.post(f"/admin/subscribers/{priya}/forget", data={"email": PRIYA})
    assert no_token.status_code == 403
    assert status_of(newsletter, PRIYA) == "active"

    done = await owner.post(
        f"/admin/subscribers/{priya}/forget", data={"csrf_token": csrf, "email": PRIYA}
    )
    assert done.status_code == 303 and done.headers["location"] == "/admin/subscribers?done=erased"
    landing = (await owner.get(done.headers["location"])).text
    assert "The person was erased" in landing and PRIYA not in landing
    # Erased as `subscribers forget` erases: no row, no byte in the files, only the digest.
    assert status_of(newsletter, PRIYA) == "absent"
    assert rows_mentioning(newsletter.engine, PRIYA) == []
    assert not mentions(database_bytes(newsletter), PRIYA)
    with newsletter.sessions() as session:
        digests = session.scalars(select(ErasedAddress.digest)).all()
    assert digests == [erasure_digest(SECRET, PRIYA)]
    assert (await owner.get(f"/admin/subscribers/{priya}")).status_code == 404
    search = (await owner.get("/admin/subscribers", params={"q": "sharma"})).text
    assert PRIYA not in search
    # An old CSV naming her is refused by the importer, line by line.
    report = (await upload(owner, f"email\n{SAM}\n{PRIYA}\n".encode())).text
    assert re.search(r'<td class="num">3</td><td>this address was erased', report)
    assert status_of(newsletter, PRIYA) == "absent"


async def test_forget_posted_for_someone_already_erased_finds_nobody(
    owner: httpx.AsyncClient, newsletter: Newsletter
) -> None:
    priya = id_of(newsletter, PRIYA)
    csrf = await token(owner)
    forget_subscriber(newsletter.sessions, PRIYA, secret_key=SECRET)  # the CLI, meanwhile
    late = await owner.post(
        f"/admin/subscribers/{priya}/forget", data={"csrf_token": csrf, "email": PRIYA}
    )
    assert late.status_code == 404 and "No such subscriber" in late.text


# -- import -------------------------------------------------------------------------------

BAD_CSV = (
    "Email,First Name,Last Name,tags,clinic\n"  # line 1: header (spellings as exports write)
    "new.one@example.com,New,One,patient;back,Bondi\n"  # 2: added
    "not-an-address,Bad,Row,,\n"  # 3: skipped
    f"{SAM.upper()},Samuel,,vip,\n"  # 4: updated (name, tag)
    ",No,Email,,\n"  # 5: skipped
    "too@many.example,a,b,c,d,e\n"  # 6: skipped
    f"{PRIYA},Priya,Sharma,patient,\n"  # 7: unchanged
)


async def test_upload_imports_with_the_clis_rules_and_reports_each_bad_row(
    owner: httpx.AsyncClient, newsletter: Newsletter, tmp_path: Path
) -> None:
    answer = await upload(owner, BAD_CSV.encode(), name="../../etc/My List (2).csv")
    assert answer.status_code == 200
    page = answer.text
    assert "<h1>Imported My List _2_.csv</h1>" in page  # the name, made harmless
    counts = dict(re.findall(r"<tr><td>([^<]+)</td><td class=\"num\">(\d+)</td></tr>", page))
    assert counts["Added"] == "1" and counts["Updated (names, tags or fields)"] == "1"
    assert counts["Already on the list, unchanged"] == "1" and counts["Rows skipped (below)"] == "3"
    skipped = re.findall(r'<tr><td class="num">(\d+)</td><td>([^<]+)</td></tr>', page)
    assert [line for line, _why in skipped] == ["3", "5", "6"]
    assert "no email address" in skipped[1][1] and "6 values but the header has 5" in skipped[2][1]
    added = subscriber(newsletter, "new.one@example.com")
    assert added.first_name == "New" and added.fields == {"clinic": "Bondi"}
    assert added.source == subscriber_files.UPLOAD_SOURCE
    assert "vip" in subscriber(newsletter, SAM).tags
    # The very report the CLI prints for the same file, on a fresh copy of the list.
    fresh = make_newsletter(tmp_path / "again", send=False)
    (tmp_path / "same.csv").write_text(BAD_CSV, encoding="utf-8")
    cli = import_csv(fresh.sessions, tmp_path / "same.csv")
    assert [(str(p.line), p.message) for p in cli.problems] == [
        (line, why.replace("&#39;", "'")) for line, why in skipped
    ]
    fresh.close()


async def test_a_file_that_cannot_be_imported_says_why_and_names_it_by_its_own_name(
    owner: httpx.AsyncClient, newsletter: Newsletter
) -> None:
    no_email = await upload(owner, b"name,phone\nSam,123\n", name="people.csv")
    assert no_email.status_code == 400
    assert "people.csv:1: no &#39;email&#39; column in the header" in no_email.text
    assert "newsletter-upload-" not in no_email.text  # no server path shown
    latin1 = await upload(owner, "email,first_name\nzoe@example.com,Zoë\n".encode("latin-1"))
    assert latin1.status_code == 400 and "not UTF-8" in latin1.text
    assert status_of(newsletter, "zoe@example.com") == "absent"


async def test_upload_without_a_file_or_token_imports_nothing(
    owner: httpx.AsyncClient, newsletter: Newsletter
) -> None:
    csrf = await token(owner)
    no_file = await owner.post("/admin/subscribers/import", data={"csrf_token": csrf})
    assert no_file.status_code == 303
    assert no_file.headers["location"] == "/admin/subscribers/import?missing=1"
    assert "Choose a CSV file" in (await owner.get(no_file.headers["location"])).text
    content = b"email\nsneaky@example.com\n"
    assert (await upload(owner, content, csrf="forged")).status_code == 403
    cross_site = await owner.post(
        "/admin/subscribers/import",
        data={"csrf_token": csrf},
        files={"file": ("x.csv", content, "text/csv")},
        headers={"Origin": "https://evil.example"},
    )
    assert cross_site.status_code == 403
    assert status_of(newsletter, "sneaky@example.com") == "absent"


async def test_an_upload_over_the_limit_is_refused_declared_or_not(
    owner: httpx.AsyncClient, newsletter: Newsletter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(subscriber_files, "MAX_UPLOAD_BYTES", 4096)
    big = b"email\n" + b"".join(b"r%04d@big.example\n" % n for n in range(400))
    csrf = await token(owner)
    declared = await upload(owner, big, csrf=csrf)
    assert declared.status_code == 413
    assert "larger than" in declared.text and "Nothing was imported" in declared.text
    # Sent in chunks without a Content-Length: counted as it arrives.
    boundary = "b0undary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n{csrf}\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.csv"\r\n'
            "Content-Type: text/csv\r\n\r\n"
        ).encode()
        + big
        + f"\r\n--{boundary}--\r\n".encode()
    )

    async def chunks() -> AsyncIterator[bytes]:
        stream = io.BytesIO(body)
        while piece := stream.read(1000):
            yield piece

    chunked = await owner.post(
        "/admin/subscribers/import",
        content=chunks(),
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert chunked.status_code == 413
    assert status_of(newsletter, "r0000@big.example") == "absent"
    # Under the limit, the same way in: imported.
    small = await upload(owner, big[:1000], csrf=csrf)
    assert small.status_code == 200 and status_of(newsletter, "r0000@big.example") == "active"


# -- export -------------------------------------------------------------------------------


async def test_export_is_the_clis_export(owner: httpx.AsyncClient, newsletter: Newsletter) -> None:
    await upload(owner, BAD_CSV.encode())  # a custom field, a tag, a name
    remove_subscriber(newsletter.sessions, "jordan.lee@example.org")
    answer = await owner.get("/admin/subscribers/export.csv")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "text/csv; charset=utf-8"
    disposition = answer.headers["content-disposition"]
    assert disposition == 'attachment; filename="subscribers-2026-11-25.csv"'
    assert answer.headers["cache-control"] == "no-store"
    expected = io.StringIO(newline="")
    export_csv(newsletter.sessions, expected)
    assert answer.text == expected.getvalue()
    lines = answer.text.splitlines()
    assert lines[0] == "email,first_name,last_name,status,tags,clinic"
    assert "new.one@example.com,New,One,active,patient;back,Bondi" in lines
    assert any(
        line.startswith("jordan.lee@example.org,") and f",{SubscriberStatus.UNSUBSCRIBED}," in line
        for line in lines
    )
    assert len(lines) == 1 + 6
