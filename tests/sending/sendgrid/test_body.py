"""The SendGrid request body: batching, personalizations, substitutions, and what never goes out."""

from __future__ import annotations

import html
import json
from collections import Counter
from typing import Any

import pytest
from hypothesis import given
from hypothesis import settings as settings_for_hypothesis
from hypothesis import strategies as st

from pipeline.config import Settings, load_settings
from pipeline.render import RenderedIssue
from pipeline.render.message import Sender, header_safe
from pipeline.sending.transports import sendgrid as sendgrid_module
from pipeline.sending.transports.base import (
    CampaignMessage,
    Outcome,
    Recipient,
)
from pipeline.sending.transports.sendgrid import DUPLICATE_ERROR, SendGridTransport
from tests.fakes.sendgrid_server import (
    SendGridServer,
    validate_mail_send,
)
from tests.helpers import FixedClock
from tests.sending.sendgrid.helpers import (
    CAMPAIGN,
    ROOT,
    SENDER,
    FakeSleep,
    outcomes,
    people,
    transport_for,
    tweak,
)

# -- the request body ---------------------------------------------------------------


def test_2500_recipients_go_as_three_schema_valid_requests(
    transport: SendGridTransport,
    message: CampaignMessage,
    sendgrid_server: SendGridServer,
) -> None:
    recipients = people(2500)
    with transport:
        results = transport.send_batch(message, recipients)

    assert [r.recipient for r in results] == recipients
    assert outcomes(results) == {Outcome.SENT: 2500}
    accepted = sendgrid_server.accepted()
    assert len(sendgrid_server.requests) == 3
    assert [len(r.body["personalizations"]) for r in accepted] == [1000, 1000, 500]
    # one message id per request, shared by its recipients
    assert [results[i].message_id for i in (0, 1000, 2000)] == [r.message_id for r in accepted]
    assert results[999].message_id == results[0].message_id
    delivered = Counter(sendgrid_server.delivered_addresses())
    assert set(delivered) == {r.email for r in recipients}
    assert set(delivered.values()) == {1}

    for request in accepted:
        body = request.body
        assert validate_mail_send(body) == []
        assert [c["type"] for c in body["content"]] == ["text/plain", "text/html"]
        assert body["from"] == {"email": "news@clinic.example", "name": "Alan at the Clinic"}
        assert body["reply_to"] == {"email": "hello@clinic.example"}
        assert body["subject"] == message.issue.subject
        assert body["custom_args"] == {"campaign": CAMPAIGN}
        assert body["categories"] == ["newsletter"]
        assert "mail_settings" not in body
        text, page = (c["value"] for c in body["content"])
        assert "%%first_name%%" in text and "%%unsubscribe_url%%" in text
        assert "%%first_name_html%%" in page and "%%unsubscribe_url_html%%" in page
        assert "%%first_name%%" not in page and "%%unsubscribe_url%%" not in page

    first = sendgrid_server.deliveries()[1234]
    assert first.email == "reader1234@example.com"
    url = "https://news.example.com/unsubscribe/tok1234?a=1&b=2"
    assert first.substitutions == {
        "%%first_name%%": "Reader1234",
        "%%unsubscribe_url%%": url,
        "%%first_name_html%%": "Reader1234",
        "%%unsubscribe_url_html%%": html.escape(url, quote=True),
    }
    assert first.custom_args == {
        "campaign": CAMPAIGN,
        "delivery_id": "1234",
        "subscriber_id": "11234",
    }
    assert first.headers == {
        "List-Unsubscribe": f"<{url}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }


def test_10000_recipients_go_as_ten_requests_of_1000(
    transport: SendGridTransport,
    message: CampaignMessage,
    sendgrid_server: SendGridServer,
) -> None:
    with transport:
        results = transport.send_batch(message, people(10_000))
    assert outcomes(results) == {Outcome.SENT: 10_000}
    assert [len(r.body["personalizations"]) for r in sendgrid_server.accepted()] == [1000] * 10
    assert len(set(sendgrid_server.delivered_addresses())) == 10_000


def test_html_hostile_first_name_is_escaped_only_in_the_html_substitution(
    transport: SendGridTransport,
    message: CampaignMessage,
    sendgrid_server: SendGridServer,
) -> None:
    hostile = "<b>Bo</b> & \"Al\" 'x'"
    recipient = Recipient("bo@example.com", hostile, 'https://x.example/u/1?a=1&b="2"')
    with transport:
        [result] = transport.send_batch(message, [recipient])
    assert result.outcome is Outcome.SENT
    [delivery] = sendgrid_server.deliveries()
    assert delivery.substitutions["%%first_name%%"] == hostile
    assert delivery.substitutions["%%first_name_html%%"] == (
        "&lt;b&gt;Bo&lt;/b&gt; &amp; &quot;Al&quot; &#x27;x&#x27;"
    )
    assert delivery.substitutions["%%unsubscribe_url_html%%"] == (
        "https://x.example/u/1?a=1&amp;b=&quot;2&quot;"
    )


def test_sandbox_mode_sets_mail_settings(
    settings: Settings,
    clock: FixedClock,
    sleep: FakeSleep,
    message: CampaignMessage,
    sendgrid_server: SendGridServer,
) -> None:
    transport = transport_for(tweak(settings, sandbox_mode=True), clock, sleep)
    with transport:
        results = transport.send_batch(message, people(3))
    assert outcomes(results) == {Outcome.SENT: 3}
    [request] = sendgrid_server.accepted()
    assert request.body["mail_settings"] == {"sandbox_mode": {"enable": True}}
    assert request.status == 200  # what SendGrid answers in sandbox mode
    assert sendgrid_server.deliveries() == []


def test_a_duplicate_address_fails_instead_of_going_twice(
    transport: SendGridTransport,
    message: CampaignMessage,
    sendgrid_server: SendGridServer,
) -> None:
    recipients = [*people(3), Recipient("READER1@example.com", "Again", "https://x/u/9")]
    with transport:
        results = transport.send_batch(message, recipients)
    assert [r.outcome for r in results] == [Outcome.SENT] * 3 + [Outcome.FAILED]
    assert results[3].error == DUPLICATE_ERROR
    assert sorted(sendgrid_server.delivered_addresses()) == sorted(r.email for r in people(3))


def test_an_empty_batch_makes_no_request(
    transport: SendGridTransport, message: CampaignMessage, sendgrid_server: SendGridServer
) -> None:
    with transport:
        assert transport.send_batch(message, []) == []
    assert sendgrid_server.requests == []


def test_the_shared_body_is_built_once_per_campaign(
    transport: SendGridTransport,
    message: CampaignMessage,
    sendgrid_server: SendGridServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[str] = []
    real = sendgrid_module.build_campaign_body

    def counting(message: CampaignMessage, options: Any) -> Any:
        calls.append(message.campaign)
        return real(message, options)

    monkeypatch.setattr(sendgrid_module, "build_campaign_body", counting)
    with transport:
        transport.send_batch(message, people(2))
        transport.send_batch(message, people(2, start=2))
        other = CampaignMessage("another", message.issue, message.sender)
        transport.send_batch(other, people(2, start=4))
    assert calls == [CAMPAIGN, "another"]
    assert len(sendgrid_server.accepted()) == 3


# Any text a subscriber or a writer can put there: quotes, backslashes, "%",
# control characters, HTML, astral-plane characters, lone surrogates excluded.
any_text = st.text(st.characters(exclude_categories=["Cs"]), max_size=40)


@settings_for_hypothesis(max_examples=200)
@given(
    email=any_text,
    first_name=any_text,
    unsubscribe_url=any_text,
    campaign=any_text,
    delivery_id=st.integers(min_value=0, max_value=2**62),
    subscriber_id=st.integers(min_value=0, max_value=2**62),
)
def test_a_request_body_says_exactly_what_its_dicts_say(
    issue: RenderedIssue,
    email: str,
    first_name: str,
    unsubscribe_url: str,
    campaign: str,
    delivery_id: int,
    subscriber_id: int,
) -> None:
    # The personalization is written as JSON text directly (for speed); read
    # back, it must be exactly this dict, whatever the values hold.
    sender = Sender("news@clinic.example", "Clinic", None)
    message = CampaignMessage(campaign=campaign, issue=issue, sender=sender)
    body = sendgrid_module.build_campaign_body(message, load_test_options())
    person = Recipient(email, first_name, unsubscribe_url, delivery_id, subscriber_id)
    one = sendgrid_module.build_personalization(body, person)
    values = {"first_name": first_name, "unsubscribe_url": unsubscribe_url}
    expected = {
        "to": [{"email": email}],
        "substitutions": {
            s.key: html.escape(values[s.name], quote=True) if s.html_escaped else values[s.name]
            for s in body.substitutions
        },
        "custom_args": {
            "campaign": campaign,
            "delivery_id": str(delivery_id),
            "subscriber_id": str(subscriber_id),
        },
        "headers": {
            "List-Unsubscribe": f"<{header_safe(unsubscribe_url)}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        },
    }
    payload = sendgrid_module.request_json(body, [one, one])
    assert json.loads(payload) == {**body.shared, "personalizations": [expected, expected]}


def test_a_value_that_is_not_unicode_still_makes_a_valid_body(
    message: CampaignMessage,
) -> None:
    # orjson refuses a lone surrogate; the standard library escapes it.
    body = sendgrid_module.build_campaign_body(message, load_test_options())
    person = Recipient("ana@example.com", "Ana\udc80", "https://x/unsubscribe/t", 1, 2)
    one = sendgrid_module.build_personalization(body, person)
    payload = sendgrid_module.request_json(body, [one])
    payload.decode("utf-8")  # valid UTF-8 all through
    [read] = json.loads(payload)["personalizations"]
    assert read["substitutions"]["%%first_name%%"] == "Ana\udc80"


def load_test_options() -> Any:
    return load_settings(ROOT / "newsletter.toml", environ={"NEWSLETTER_SECRET_KEY": "t"}).sendgrid


def test_a_request_body_prints_as_its_size_not_its_addresses() -> None:
    body = sendgrid_module.request_json(
        sendgrid_module.build_campaign_body(
            CampaignMessage(CAMPAIGN, RenderedIssue("s", "S", "", "<p>x</p>", "x"), SENDER),
            load_test_options(),
        ),
        [b'{"to":[{"email":"ana@example.com"}]}'],
    )
    assert json.loads(body)["personalizations"] == [{"to": [{"email": "ana@example.com"}]}]
    # what an error message or a log line (which formats with %) would show of it
    for shown in (str(body), repr(body), f"{body!s}", f"{body!r}", "%s" % (body,)):  # noqa: UP031
        assert "ana@example.com" not in shown
        assert "bytes of JSON" in shown


def test_an_address_holding_an_encoded_word_never_goes_to_sendgrid(
    transport: SendGridTransport,
    message: CampaignMessage,
    sendgrid_server: SendGridServer,
) -> None:
    # Stored before the address check refused it (issue 12): SendGrid writes the
    # headers itself, so such an address fails here instead of being handed over.
    hostile = Recipient("=?utf-8?q?v=40evil.example=2C_w?=@example.com", "Eve", "https://x/u/8")
    with transport:
        results = transport.send_batch(message, [*people(2), hostile])
    assert [r.outcome for r in results] == [Outcome.SENT, Outcome.SENT, Outcome.FAILED]
    assert "refusing to write the address" in (results[2].error or "")
    assert sorted(sendgrid_server.delivered_addresses()) == sorted(r.email for r in people(2))
