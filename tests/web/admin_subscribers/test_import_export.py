"""CSV upload with the CLI importer's rules and report, its limits, and the export."""

from __future__ import annotations

import io
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from pipeline.newsletter import Newsletter
from pipeline.store.models import SubscriberStatus
from pipeline.subscribers import export_csv, import_csv, remove_subscriber
from pipeline.web.admin import subscriber_files
from tests.web.admin_subscribers.helpers import PRIYA, SAM, token, upload
from tests.web.helpers import make_newsletter, status_of, subscriber

pytestmark = pytest.mark.anyio


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
