"""A person's page (by id or address), and remove and forget behind a confirmation."""

from __future__ import annotations

import html
import re

import httpx
import pytest
from sqlalchemy import select

from pipeline.newsletter import Newsletter
from pipeline.store.models import ErasedAddress
from pipeline.subscribers import forget_subscriber
from pipeline.subscribers.erasure import erasure_digest
from pipeline.subscribers.profile import subscriber_profile
from tests.subscribers.test_erasure import database_bytes, mentions, rows_mentioning
from tests.web.admin_subscribers.helpers import PRIYA, SAM, id_of, token, upload
from tests.web.helpers import SECRET, csrf_from, status_of

pytestmark = pytest.mark.anyio


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
