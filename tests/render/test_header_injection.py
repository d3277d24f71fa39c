"""Header injection through addresses and titles (issue 12, point 1).

``=?utf-8?q?...?=@example.com`` is a valid RFC 5322 address, but Python's email
package decodes the encoded-word again when it writes the ``To`` header: on
3.11.7 (this project's Python) that put a raw ``x-injected: yes`` header, or a
second recipient, into the bytes sent. Two guards, both tested here: every
entry point refuses such an address with a reason, and the message builder
refuses any header whose written bytes break the line, whatever the input.
"""

from __future__ import annotations

import json
import shutil
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.utils import getaddresses
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from pipeline.config import load_settings
from pipeline.errors import InvalidAddressError, UnsafeHeaderError
from pipeline.newsletter import Newsletter
from pipeline.render import RenderedIssue
from pipeline.render.message import OutgoingEmail, Sender, build_message
from pipeline.sending.transports import CampaignMessage, Outcome, Recipient
from pipeline.sending.transports.outbox import OutboxTransport
from pipeline.store.models import WebhookEvent
from pipeline.subscribers import import_csv, normalize_email
from pipeline.subscribers.addresses import fast_normalize, normalize_address
from tests.cli.test_cli import run as run_cli
from tests.events.webhook_helpers import post_events, webhook_newsletter
from tests.fakes.smtp_server import SmtpTestServer
from tests.helpers import ROOT, FixedClock
from tests.sending.smtp.helpers import (
    FakeSleep,
    campaign,
    configure,
    outcomes,
    recipients,
    transport_for,
)
from tests.web.helpers import make_newsletter, status_of, subscribe

#: The two addresses of the issue: a raw header, and a second recipient.
INJECTS_A_HEADER = "=?utf-8?q?a=0d=0ax-injected=3a_yes=0d=0a_?=@example.com"
ADDS_A_RECIPIENT = "=?utf-8?q?v=40evil.example=2C_w?=@example.com"
HOSTILE = (INJECTS_A_HEADER, ADDS_A_RECIPIENT)

SENDER = Sender(email="news@clinic.example", name="Clinic", reply_to="hello@clinic.example")


@pytest.fixture
def newsletter(tmp_path: Path, clock: FixedClock) -> Newsletter:
    """The sample newsletter, sent once, with the webhook key set."""
    return webhook_newsletter(tmp_path / "clinic", clock)


# -- one check where an address enters ------------------------------------------------


@pytest.mark.parametrize("address", HOSTILE)
def test_the_one_check_refuses_encoded_words_with_a_reason(address: str) -> None:
    assert fast_normalize(address) is None  # the fast path leaves it to the full check
    for check in (normalize_address, normalize_email):
        with pytest.raises(InvalidAddressError, match="encoded-word") as refused:
            check(address)
        assert address in str(refused.value)


@pytest.mark.parametrize("address", ["a\r\nb@example.com", "a\x00b@example.com", "a\u2028@x.com"])
def test_control_characters_are_refused_with_a_reason(address: str) -> None:
    with pytest.raises(InvalidAddressError, match="line break"):
        normalize_address(address)


def test_plain_and_international_addresses_still_pass() -> None:
    assert normalize_address(" Ann.Lee@Example.COM ") == "ann.lee@example.com"
    assert normalize_address("a=b?c@example.com") == "a=b?c@example.com"  # no "=?" together
    assert normalize_address("Ann@Exämple.com") == "ann@xn--exmple-cua.com"
    assert normalize_address("jöe@example.com") == "jöe@example.com"


def test_csv_import_reports_each_line_with_its_reason(
    tmp_path: Path, newsletter: Newsletter
) -> None:
    path = tmp_path / "list.csv"
    lines = ["email,first_name", "ok.reader@example.com,Ok", *(f"{a},Eve" for a in HOSTILE)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = import_csv(newsletter.sessions, path)
    assert report.added == 1
    assert [p.line for p in report.problems] == [3, 4]
    for problem, address in zip(report.problems, HOSTILE, strict=True):
        assert str(problem).startswith(f"{path}:{problem.line}: invalid email address {address!r}")
        assert "encoded-word" in problem.message
        assert status_of(newsletter, address) == "absent"


def test_subscribers_add_refuses_with_the_reason(tmp_path: Path) -> None:
    newsletter = make_newsletter(tmp_path / "clinic", send=False)
    newsletter.close()
    for address in HOSTILE:
        result = run_cli(tmp_path / "clinic", "subscribers", "add", address)
        assert result.returncode != 0, result.stdout
        assert "encoded-word" in result.stderr.replace("\n", " ")
    listed = json.loads(run_cli(tmp_path / "clinic", "subscribers", "list", "--json").stdout)
    assert not any("=?" in row["email"] for row in listed)


@pytest.mark.anyio
async def test_the_web_form_refuses_them(newsletter: Newsletter, client: httpx.AsyncClient) -> None:
    for address in HOSTILE:
        response = await subscribe(client, address)
        assert response.status_code == 400, address
        assert "valid email address" in response.text
        assert status_of(newsletter, address) == "absent"
    assert not (newsletter.settings.outbox_path / "confirm-subscription").exists()


@pytest.mark.anyio
async def test_webhook_events_naming_them_are_invalid_and_not_stored(
    newsletter: Newsletter, clock: FixedClock, client: httpx.AsyncClient
) -> None:
    events = [
        {
            "email": address,
            "timestamp": int(clock.now.timestamp()),
            "event": "bounce",
            "sg_event_id": uuid.uuid4().hex,
        }
        for address in HOSTILE
    ]
    response = await post_events(client, clock, events)
    assert response.status_code == 200
    assert response.json()["invalid"] == 2 and response.json()["stored"] == 0
    with newsletter.sessions() as session:
        assert session.scalars(select(WebhookEvent.email)).all() == []


# -- the builder, on the bytes written, with validation bypassed ------------------------


def _email(**changes: object) -> OutgoingEmail:
    base = OutgoingEmail(
        sender=SENDER,
        to="sam@example.com",
        subject="Hip pain",
        text="Hi Sam,\n",
        html="<p>Hi Sam,</p>",
        unsubscribe_url="https://news.example.com/unsubscribe/1.abc.def",
        date=datetime(2026, 12, 1, 9, tzinfo=UTC),
        campaign="hip-pain",
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def _header_lines(raw: bytes) -> list[bytes]:
    """The header block's lines as written (continuations joined to their header)."""
    head = raw.split(b"\r\n\r\n", 1)[0]
    lines: list[bytes] = []
    for line in head.split(b"\r\n"):
        if line[:1] in (b" ", b"\t") and lines:
            lines[-1] += line
        else:
            lines.append(line)
    return lines


def _written_or_refused(email: OutgoingEmail) -> bytes | None:
    """The bytes the builder writes, or None when it refuses (the only two safe outcomes)."""
    try:
        return build_message(email).as_bytes()
    except UnsafeHeaderError:
        return None


def assert_one_header_each(raw: bytes | None) -> None:
    """Nothing injected: no header we did not set, no bare CR/LF, one recipient."""
    if raw is None:
        return
    names = [line.split(b":", 1)[0].lower() for line in _header_lines(raw)]
    assert b"x-injected" not in names and b"bcc" not in names and b"x-a" not in names
    assert len(names) == len(set(names)), names
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert b"\r" not in head.replace(b"\r\n", b"") and b"\n" not in head.replace(b"\r\n", b"")
    parsed = message_from_bytes(raw, policy=policy.default)
    assert len(getaddresses([str(parsed["To"])])) == 1
    assert parsed["Bcc"] is None and parsed["Cc"] is None


@pytest.mark.parametrize("address", HOSTILE)
def test_the_builder_refuses_an_encoded_word_address(address: str) -> None:
    raw = _written_or_refused(_email(to=address))
    assert_one_header_each(raw)
    assert raw is None  # refused outright, on every Python
    with pytest.raises(UnsafeHeaderError, match="refusing to write the address"):
        build_message(_email(to=address))


HOSTILE_VALUES = "=?utf-8?q?x=0d=0aBcc:_victim@evil.example=0d=0ax-injected:_yes?="


@pytest.mark.parametrize(
    "changes",
    [
        {"subject": f"Hello {HOSTILE_VALUES} world"},
        {"campaign": HOSTILE_VALUES},
        {"sender": replace(SENDER, name=HOSTILE_VALUES)},
        {"sender": replace(SENDER, reply_to=INJECTS_A_HEADER)},
        {"message_id": f"<{HOSTILE_VALUES}@clinic.example>"},
        {"unsubscribe_url": f"https://news.example.com/unsubscribe/{HOSTILE_VALUES}"},
    ],
    ids=["subject", "campaign", "sender-name", "reply-to", "message-id", "unsubscribe-url"],
)
def test_no_header_value_can_break_the_line_in_the_bytes(changes: dict[str, object]) -> None:
    assert_one_header_each(_written_or_refused(_email(**changes)))


def test_a_subject_that_decodes_to_crlf_is_refused() -> None:
    with pytest.raises(UnsafeHeaderError, match="Subject"):
        build_message(_email(subject=f"Hello {HOSTILE_VALUES}")).as_bytes()


def test_an_honest_message_is_unchanged_by_the_checks() -> None:
    raw = build_message(_email(subject="Is 2+2=? Café")).as_bytes()
    assert_one_header_each(raw)
    assert b"To: sam@example.com\r\n" in raw


def test_the_outbox_fails_that_one_recipient_and_writes_nothing_for_it(tmp_path: Path) -> None:
    issue = RenderedIssue(
        slug="hip-pain", subject="Hip pain", preheader="", html="<p>Hi</p>", text="Hi\n"
    )
    clock = FixedClock()
    recipients = [
        Recipient(email=address, first_name="x", unsubscribe_url="https://n.example/u/1")
        for address in ("sam@example.com", *HOSTILE)
    ]
    with OutboxTransport(tmp_path, clock) as transport:
        results = transport.send_batch(
            CampaignMessage(campaign="hip-pain", issue=issue, sender=SENDER), recipients
        )
    assert [r.outcome for r in results] == [Outcome.SENT, Outcome.FAILED, Outcome.FAILED]
    assert all("refusing to write the address" in (r.error or "") for r in results[1:])
    written = list((tmp_path / "hip-pain").glob("*.eml"))
    assert [p.name for p in written] == ["test-sam@example.com.eml"]
    assert_one_header_each(written[0].read_bytes())


def test_smtp_fails_that_recipient_and_the_relay_never_sees_it(tmp_path: Path) -> None:
    shutil.copyfile(ROOT / "newsletter.toml", tmp_path / "newsletter.toml")
    base = load_settings(tmp_path / "newsletter.toml", environ={"NEWSLETTER_SECRET_KEY": "t"})
    people = recipients(2)
    hostile = [people[0]._replace(email=address, delivery_id=None) for address in HOSTILE]
    with SmtpTestServer() as server:
        settings = configure(base, server.port)
        with transport_for(settings, FakeSleep()) as transport:
            results = transport.send_batch(campaign(settings), [people[0], *hostile, people[1]])
        received = server.messages
    assert outcomes(results) == [Outcome.SENT, Outcome.FAILED, Outcome.FAILED, Outcome.SENT]
    assert [m.rcpt_tos for m in received] == [(people[0].email,), (people[1].email,)]
    for message in received:
        assert_one_header_each(message.data)
