"""MIME building: structure, required headers, and no header injection."""

from __future__ import annotations

import email
from datetime import UTC, datetime
from email import policy
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from pipeline.render.message import OutgoingEmail, Sender, build_message, header_safe
from pipeline.sending.transports.base import Recipient
from pipeline.sending.transports.outbox import outbox_file_name, write_atomically

UNSUBSCRIBE = "https://news.example.com/unsubscribe/" + "WzQsImNkYzEyY2Y0MmI2YSJd.x" * 4
SENDER = Sender(email="news@clinic.example", name="Clinic", reply_to="hello@clinic.example")


def _email(subject: str = "Hip Pain", name: str | None = None) -> OutgoingEmail:
    return OutgoingEmail(
        sender=Sender(email=SENDER.email, name=name or SENDER.name, reply_to=SENDER.reply_to),
        to="sam@example.com",
        subject=subject,
        text="Hi Sam,\n\nplain body\n",
        html="<p>Hi Sam,</p>",
        unsubscribe_url=UNSUBSCRIBE,
        date=datetime(2026, 12, 1, 9, tzinfo=UTC),
        campaign="hip-pain",
    )


def test_multipart_alternative_text_first_with_required_headers() -> None:
    raw = build_message(_email()).as_bytes()
    parsed = email.message_from_bytes(raw, policy=policy.default)
    assert parsed.get_content_type() == "multipart/alternative"
    parts = [p.get_content_type() for p in parsed.iter_parts()]
    assert parts == ["text/plain", "text/html"]
    # a long token must stay a plain URL, not an RFC 2047 encoded-word
    assert f"List-Unsubscribe: <{UNSUBSCRIBE}>".encode() in raw
    assert parsed["List-Unsubscribe"] == f"<{UNSUBSCRIBE}>"
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert parsed["Message-ID"].endswith("@clinic.example>")
    assert parsed["Date"] == "Tue, 01 Dec 2026 09:00:00 +0000"
    assert parsed["Reply-To"] == "hello@clinic.example"
    assert b"\r\n" in raw  # SMTP line endings


def test_crlf_in_subject_cannot_create_a_header() -> None:
    hostile = "Hello\r\nBcc: victim@example.com\r\nX-Evil: 1"
    raw = build_message(_email(subject=hostile, name="Alan\nBcc: x@y.z")).as_bytes()
    parsed = email.message_from_bytes(raw, policy=policy.default)
    assert parsed["Bcc"] is None
    assert parsed["X-Evil"] is None
    assert parsed["Subject"] == "Hello Bcc: victim@example.com X-Evil: 1"


@given(st.text())
def test_any_subject_is_one_header(subject: str) -> None:
    raw = build_message(_email(subject=subject or "x")).as_bytes()
    parsed = email.message_from_bytes(raw, policy=policy.default)
    assert parsed["Bcc"] is None
    assert str(parsed["Subject"]) == header_safe(subject or "x")


def test_outbox_names_are_safe_and_stable(tmp_path: Path) -> None:
    recipient = Recipient(
        email="o'brien+news@example.com", first_name="x", unsubscribe_url="u", delivery_id=42
    )
    assert outbox_file_name(recipient) == "000042-o_brien+news@example.com.eml"
    target = tmp_path / "a" / "b.eml"
    write_atomically(target, b"one")
    write_atomically(target, b"two")
    assert target.read_bytes() == b"two"
    assert [p.name for p in target.parent.iterdir()] == ["b.eml"]  # no temp files left


def test_non_ascii_local_part_is_raw_utf8_not_an_encoded_word() -> None:
    email_ = _email()
    raw = build_message(OutgoingEmail(**{**email_.__dict__, "to": "jöe@example.com"})).as_bytes()
    assert "To: jöe@example.com".encode() in raw
    assert b"=?utf-8?" not in raw.split(b"\r\n\r\n", 1)[0].split(b"To:")[1].split(b"\r\n")[0]


@given(st.text())
def test_header_safe_collapses_every_whitespace_run(value: str) -> None:
    # The fast path for values without whitespace must agree with the regex.
    expected = " ".join(value.split())
    assert header_safe(value) == expected
    assert not any(c in header_safe(value) for c in "\r\n\t\v\f\x85\u2028\u2029")
