"""The SendGrid transport, driving the real client against a strict fake on 127.0.0.1."""

from __future__ import annotations

import html
import json
import logging
import shutil
import socket
import threading
import time
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import settings as settings_for_hypothesis
from hypothesis import strategies as st
from pydantic import SecretStr

from pipeline.config import Settings, load_settings
from pipeline.content.articles import read_article
from pipeline.errors import ConfigError
from pipeline.render import RenderedIssue, render_issue
from pipeline.render.message import Sender, header_safe
from pipeline.sending.transports import TransportEnv, make_transport
from pipeline.sending.transports import sendgrid as sendgrid_module
from pipeline.sending.transports.base import (
    CampaignMessage,
    DeliveryResult,
    Outcome,
    Recipient,
    TransportStopError,
)
from pipeline.sending.transports.sendgrid import DUPLICATE_ERROR, SendGridTransport
from tests.fakes.sendgrid_server import (
    TEST_API_KEY,
    Drop,
    Hang,
    Reply,
    SendGridServer,
    sendgrid_server_fixture,  # noqa: F401 - provides the sendgrid_server fixture
    validate_mail_send,
)
from tests.helpers import SAMPLE_SLUG, FixedClock

ROOT = Path(__file__).resolve().parents[2]
CAMPAIGN = "2026-12-01-hip-pain"
#: Client timeouts: the usual one, and the one the hang tests wait out.
TIMEOUT = 30.0
HANG_TIMEOUT = 0.5
SENDER = Sender("news@clinic.example", "Alan at the Clinic", "hello@clinic.example")


class FakeSleep:
    """Records every wait instead of waiting."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@pytest.fixture(scope="module")
def issue() -> RenderedIssue:
    settings = load_settings(ROOT / "newsletter.toml", environ={"NEWSLETTER_SECRET_KEY": "t"})
    article = read_article(ROOT / "articles" / f"{SAMPLE_SLUG}.md", settings.schedule.tz)
    return render_issue(article, None, settings, archive_url=f"http://x/archive/{SAMPLE_SLUG}")


@pytest.fixture
def message(issue: RenderedIssue) -> CampaignMessage:
    return CampaignMessage(campaign=CAMPAIGN, issue=issue, sender=SENDER)


@pytest.fixture
def settings(tmp_path: Path, sendgrid_server: SendGridServer) -> Settings:
    shutil.copyfile(ROOT / "newsletter.toml", tmp_path / "newsletter.toml")
    environ = {
        "SENDGRID_API_KEY": TEST_API_KEY,
        "SENDGRID_API_HOST": sendgrid_server.url,
        "NEWSLETTER_SECRET_KEY": "t",
    }
    loaded = load_settings(tmp_path / "newsletter.toml", environ=environ)
    # Generous: a busy machine validating 1000 personalizations must not look
    # like a hang. The hang tests set their own short timeout.
    return tweak(loaded, timeout=TIMEOUT, max_retries=3)


def tweak(settings: Settings, **sendgrid: Any) -> Settings:
    """Settings with some ``[sendgrid]`` options changed."""
    return settings.model_copy(update={"sendgrid": settings.sendgrid.model_copy(update=sendgrid)})


@pytest.fixture
def sleep() -> FakeSleep:
    return FakeSleep()


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


def transport_for(settings: Settings, clock: FixedClock, sleep: FakeSleep) -> SendGridTransport:
    return SendGridTransport.from_env(TransportEnv(settings=settings, clock=clock, sleep=sleep))


@pytest.fixture
def transport(settings: Settings, clock: FixedClock, sleep: FakeSleep) -> SendGridTransport:
    return transport_for(settings, clock, sleep)


def people(count: int, *, start: int = 0) -> list[Recipient]:
    return [
        Recipient(
            email=f"reader{i}@example.com",
            first_name=f"Reader{i}",
            unsubscribe_url=f"https://news.example.com/unsubscribe/tok{i}?a=1&b=2",
            delivery_id=i,
            subscriber_id=10_000 + i,
        )
        for i in range(start, start + count)
    ]


def outcomes(results: Sequence[DeliveryResult]) -> Counter[Outcome]:
    return Counter(r.outcome for r in results)


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


# -- answers -------------------------------------------------------------------------


def test_429_waits_until_the_reset_time_then_sends_the_same_batch(
    transport: SendGridTransport,
    message: CampaignMessage,
    sendgrid_server: SendGridServer,
    clock: FixedClock,
    sleep: FakeSleep,
) -> None:
    sendgrid_server.script(Reply.rate_limited(reset=clock().timestamp() + 7))
    with transport:
        results = transport.send_batch(message, people(5))
    assert outcomes(results) == {Outcome.SENT: 5}
    [limited, accepted] = sendgrid_server.requests
    assert limited.status == 429 and accepted.accepted
    assert limited.body == accepted.body
    [wait] = sleep.calls
    assert 7 <= wait <= 8  # the reset time, plus at most a second of jitter


def test_429_reset_far_away_is_capped(
    settings: Settings,
    clock: FixedClock,
    sleep: FakeSleep,
    message: CampaignMessage,
    sendgrid_server: SendGridServer,
) -> None:
    transport = transport_for(tweak(settings, max_rate_limit_wait=30), clock, sleep)
    sendgrid_server.script(Reply.rate_limited(reset=clock().timestamp() + 86_400))
    with transport:
        results = transport.send_batch(message, people(1))
    assert outcomes(results) == {Outcome.SENT: 1}
    assert sleep.calls == [30]


def test_a_429_storm_still_ends_delivered_and_does_not_use_up_retries(
    transport: SendGridTransport,
    message: CampaignMessage,
    sendgrid_server: SendGridServer,
    sleep: FakeSleep,
) -> None:
    sendgrid_server.script(*[Reply.rate_limited() for _ in range(8)])  # max_retries is 3
    with transport:
        results = transport.send_batch(message, people(1500))
    assert outcomes(results) == {Outcome.SENT: 1500}
    assert len(sleep.calls) == 8
    assert all(0 < s <= 300 for s in sleep.calls)
    assert len(sendgrid_server.requests) == 10
    assert Counter(sendgrid_server.delivered_addresses()) == {r.email: 1 for r in people(1500)}


def test_an_endless_429_is_deferred_eventually(
    transport: SendGridTransport,
    message: CampaignMessage,
    sendgrid_server: SendGridServer,
    sleep: FakeSleep,
) -> None:
    sendgrid_server.always(Reply.rate_limited())
    with transport:
        results = transport.send_batch(message, people(2))
    assert outcomes(results) == {Outcome.DEFERRED: 2}
    assert "429" in (results[0].error or "")
    assert len(sleep.calls) == sendgrid_module.MAX_RATE_LIMIT_RETRIES


def test_500_once_is_retried_and_sent(
    transport: SendGridTransport,
    message: CampaignMessage,
    sendgrid_server: SendGridServer,
    sleep: FakeSleep,
) -> None:
    sendgrid_server.script(Reply.error(500, "internal server error"))
    with transport:
        results = transport.send_batch(message, people(4))
    assert outcomes(results) == {Outcome.SENT: 4}
    assert len(sleep.calls) == 1 and 0.5 <= sleep.calls[0] <= 1.0
    assert len(sendgrid_server.requests) == 2


def test_500_forever_is_deferred_after_max_retries(
    transport: SendGridTransport,
    message: CampaignMessage,
    sendgrid_server: SendGridServer,
    sleep: FakeSleep,
) -> None:
    sendgrid_server.always(Reply.error(503, "service unavailable"))
    with transport:
        results = transport.send_batch(message, people(1200))
    assert outcomes(results) == {Outcome.DEFERRED: 1200}
    assert "503" in (results[0].error or "") and "service unavailable" in (results[0].error or "")
    # 1 try + 3 retries for the first request; the second is never attempted
    assert len(sendgrid_server.requests) == 4
    assert len(sleep.calls) == 3
    assert sleep.calls == sorted(sleep.calls)  # exponential
    assert "not attempted" in (results[1100].error or "")


def test_connection_refused_is_retried_then_deferred(
    settings: Settings, clock: FixedClock, sleep: FakeSleep, message: CampaignMessage
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    closed = settings.model_copy(update={"sendgrid_api_host": f"http://127.0.0.1:{port}"})
    transport = transport_for(closed, clock, sleep)
    with transport:
        results = transport.send_batch(message, people(2))
    assert outcomes(results) == {Outcome.DEFERRED: 2}
    assert "cannot reach SendGrid" in (results[0].error or "")
    assert len(sleep.calls) == 3


def test_400_fails_that_batch_with_sendgrids_message_and_the_next_batch_goes(
    transport: SendGridTransport,
    message: CampaignMessage,
    sendgrid_server: SendGridServer,
    sleep: FakeSleep,
) -> None:
    sendgrid_server.script(Reply.error(400, "The from address does not match a verified Sender"))
    with transport:
        results = transport.send_batch(message, people(1500))
    assert outcomes(results[:1000]) == {Outcome.FAILED: 1000}
    assert "does not match a verified Sender" in (results[0].error or "")
    assert "400" in (results[0].error or "")
    assert outcomes(results[1000:]) == {Outcome.SENT: 500}
    assert sleep.calls == []
    assert len(sendgrid_server.requests) == 2


def test_400_naming_one_personalization_fails_only_that_recipient(
    transport: SendGridTransport,
    message: CampaignMessage,
    sendgrid_server: SendGridServer,
) -> None:
    sendgrid_server.script(
        Reply.error(400, "Does not contain a valid address.", "personalizations.1.to.0.email")
    )
    with transport:
        results = transport.send_batch(message, people(3))
    assert [r.outcome for r in results] == [Outcome.SENT, Outcome.FAILED, Outcome.SENT]
    assert "Does not contain a valid address." in (results[1].error or "")
    assert sorted(sendgrid_server.delivered_addresses()) == [
        "reader0@example.com",
        "reader2@example.com",
    ]


def test_413_fails_the_batch(
    transport: SendGridTransport,
    message: CampaignMessage,
    sendgrid_server: SendGridServer,
) -> None:
    sendgrid_server.script(Reply.error(413, "content too large"))
    with transport:
        results = transport.send_batch(message, people(2))
    assert outcomes(results) == {Outcome.FAILED: 2}
    assert "content too large" in (results[0].error or "")


def test_401_stops_without_showing_the_key(
    settings: Settings,
    clock: FixedClock,
    sleep: FakeSleep,
    message: CampaignMessage,
    sendgrid_server: SendGridServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    secret = "SG.wrong-secret-key-123"
    wrong = settings.model_copy(update={"sendgrid_api_key": SecretStr(secret)})
    transport = transport_for(wrong, clock, sleep)
    caplog.set_level(logging.DEBUG)
    with transport, pytest.raises(TransportStopError) as caught:
        transport.send_batch(message, people(3))
    text = str(caught.value)
    assert text.startswith("SendGrid refused the API key (401)")
    assert "authorization grant is invalid" in text
    assert secret not in text and secret not in repr(caught.value)
    assert secret not in caplog.text
    assert "reader0@example.com" not in caplog.text  # no request payload in the log either
    assert sendgrid_server.accepted() == [] and sleep.calls == []


def test_403_stops_too(
    transport: SendGridTransport,
    message: CampaignMessage,
    sendgrid_server: SendGridServer,
) -> None:
    sendgrid_server.script(Reply.error(403, "access forbidden"))
    with transport, pytest.raises(TransportStopError, match=r"\(403\): access forbidden"):
        transport.send_batch(message, people(1))


def test_a_refusal_after_part_of_the_batch_went_defers_the_rest(
    transport: SendGridTransport,
    message: CampaignMessage,
    sendgrid_server: SendGridServer,
) -> None:
    # the first request is answered normally, the second refused: raising now
    # would lose the first thousand's results, so the rest wait instead
    sendgrid_server.script(None, Reply.error(401, "revoked"))
    with transport:
        results = transport.send_batch(message, people(1500))
    assert outcomes(results[:1000]) == {Outcome.SENT: 1000}
    assert outcomes(results[1000:]) == {Outcome.DEFERRED: 500}
    assert "SendGrid refused the API key (401): revoked" in (results[1000].error or "")
    assert len(sendgrid_server.delivered_addresses()) == 1000


def test_hang_is_uncertain_after_the_client_timeout_and_not_retried(
    settings: Settings,
    clock: FixedClock,
    message: CampaignMessage,
    sendgrid_server: SendGridServer,
    sleep: FakeSleep,
) -> None:
    transport = transport_for(tweak(settings, timeout=HANG_TIMEOUT), clock, sleep)
    sendgrid_server.script(Hang(accept=True))
    started = time.monotonic()
    with transport:
        results = transport.send_batch(message, people(1500))
    elapsed = time.monotonic() - started
    assert elapsed < 3  # the 0.5 s client timeout, not the server's 10 s hang
    assert outcomes(results[:1000]) == {Outcome.UNCERTAIN: 1000}
    assert "within 0.5 s" in (results[0].error or "")
    # the rest are not tried after a request in doubt: they wait for a later run
    assert outcomes(results[1000:]) == {Outcome.DEFERRED: 500}
    assert len(sendgrid_server.requests) == 1 and sleep.calls == []


def test_dropped_connection_is_uncertain(
    transport: SendGridTransport,
    message: CampaignMessage,
    sendgrid_server: SendGridServer,
    sleep: FakeSleep,
) -> None:
    sendgrid_server.script(Drop())
    with transport:
        results = transport.send_batch(message, people(3))
    assert outcomes(results) == {Outcome.UNCERTAIN: 3}
    assert "may have been accepted" in (results[0].error or "")
    assert len(sendgrid_server.requests) == 1 and sleep.calls == []


@pytest.mark.parametrize("status", [502, 504])
def test_a_gateway_error_is_uncertain_after_exactly_one_request(
    status: int,
    transport: SendGridTransport,
    message: CampaignMessage,
    sendgrid_server: SendGridServer,
    sleep: FakeSleep,
) -> None:
    # An edge proxy's 502/504 can come after SendGrid took the request: sent
    # again, the whole batch could arrive twice.
    sendgrid_server.script(Reply.error(status, "gateway trouble"))
    with transport:
        results = transport.send_batch(message, people(1200))
    assert outcomes(results[:1000]) == {Outcome.UNCERTAIN: 1000}
    assert f"{status}" in (results[0].error or "")
    assert "may have been accepted" in (results[0].error or "")
    # nothing more is tried after a request in doubt: the rest wait for a later run
    assert outcomes(results[1000:]) == {Outcome.DEFERRED: 200}
    assert len(sendgrid_server.requests) == 1 and sleep.calls == []


def test_503_then_202_is_sent_after_one_retry(
    transport: SendGridTransport,
    message: CampaignMessage,
    sendgrid_server: SendGridServer,
    sleep: FakeSleep,
) -> None:
    # 503 says the service did not take the request: retrying cannot double-send.
    sendgrid_server.script(Reply.error(503, "service unavailable"))
    with transport:
        results = transport.send_batch(message, people(3))
    assert outcomes(results) == {Outcome.SENT: 3}
    assert [r.status for r in sendgrid_server.requests] == [503, 202]
    assert len(sleep.calls) == 1
    assert Counter(sendgrid_server.delivered_addresses()) == {r.email: 1 for r in people(3)}


class _Announced(logging.Handler):
    """Sets ``event`` when a log line containing ``text`` is emitted (no polling)."""

    def __init__(self, text: str) -> None:
        super().__init__(logging.DEBUG)
        self.text = text
        self.event = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if self.text in record.getMessage():
            self.event.set()


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(Reply.rate_limited(reset=time.time() + 3600), id="429-long-reset"),
        pytest.param(Reply.error(503, "service unavailable"), id="503-backoff"),
    ],
)
def test_a_stop_ends_a_real_wait_within_a_second(
    answer: Reply,
    settings: Settings,
    message: CampaignMessage,
    sendgrid_server: SendGridServer,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The real wait (no injected sleep), with a wall clock so X-RateLimit-Reset
    # is an hour away (capped at max_rate_limit_wait, 300 s), and a backoff of
    # a minute for the 503.
    transport = SendGridTransport.from_env(
        TransportEnv(settings=tweak(settings, max_retries=10), clock=lambda: datetime.now(UTC))
    )
    monkeypatch.setattr(sendgrid_module, "BACKOFF_BASE", 60.0)
    monkeypatch.setattr(transport, "_jitter", lambda: 1.0)
    sendgrid_server.always(answer)
    caplog.set_level(logging.INFO, logger=sendgrid_module.__name__)
    announced = _Announced("trying again in")
    logging.getLogger(sendgrid_module.__name__).addHandler(announced)
    results: list[DeliveryResult] = []
    try:
        with transport:
            worker = threading.Thread(
                target=lambda: results.extend(transport.send_batch(message, people(3))),
                daemon=True,
            )
            worker.start()
            assert announced.event.wait(10), "the transport never started waiting"
            stopped_at = time.monotonic()
            transport.request_stop()  # what SIGTERM does, through the runner
            worker.join(timeout=5)
            took = time.monotonic() - stopped_at
    finally:
        logging.getLogger(sendgrid_module.__name__).removeHandler(announced)
    assert not worker.is_alive(), "the wait was not interrupted"
    assert took < 1.0
    # never handed over: DEFERRED, so the ledger puts them back to pending
    assert outcomes(results) == {Outcome.DEFERRED: 3}
    assert results[0].error == "stopped"
    assert len(sendgrid_server.requests) == 1
    assert sendgrid_server.delivered_addresses() == []


def test_a_batch_is_not_started_after_a_stop(
    transport: SendGridTransport, message: CampaignMessage, sendgrid_server: SendGridServer
) -> None:
    transport.request_stop()
    with transport:
        results = transport.send_batch(message, people(2))
    assert outcomes(results) == {Outcome.DEFERRED: 2}
    assert sendgrid_server.requests == []


# -- construction --------------------------------------------------------------------


def test_missing_api_key_is_a_config_error(
    settings: Settings, clock: FixedClock, sleep: FakeSleep
) -> None:
    keyless = settings.model_copy(update={"sendgrid_api_key": None})
    with pytest.raises(ConfigError, match="SENDGRID_API_KEY is not set"):
        transport_for(keyless, clock, sleep)


def test_make_transport_chooses_sendgrid(settings: Settings, clock: FixedClock) -> None:
    chosen = settings.model_copy(
        update={"sending": settings.sending.model_copy(update={"transport": "sendgrid"})}
    )
    transport = make_transport(chosen, clock)
    assert isinstance(transport, SendGridTransport)
    transport.open()
    assert transport._client.client.timeout == TIMEOUT  # the timeout reaches urllib
    transport.close()


# -- the fake is strict ----------------------------------------------------------------


def valid_body(count: int = 1) -> dict[str, Any]:
    return {
        "personalizations": [
            {
                "to": [{"email": f"p{i}@example.com"}],
                "substitutions": {"%%first_name%%": "P"},
                "custom_args": {"delivery_id": str(i)},
                "headers": {"List-Unsubscribe": "<https://x/u>"},
            }
            for i in range(count)
        ],
        "from": {"email": "news@example.com"},
        "subject": "Hello",
        "content": [
            {"type": "text/plain", "value": "hi"},
            {"type": "text/html", "value": "<p>hi</p>"},
        ],
        "custom_args": {"campaign": "c"},
    }


def fields(errors: list[dict[str, Any]]) -> set[str | None]:
    return {e["field"] for e in errors}


def test_validator_accepts_a_proper_body() -> None:
    assert validate_mail_send(valid_body(1000)) == []


@pytest.mark.parametrize("name", ["content-type", "BCC", "Reply-To", "X-SG-ID", "dkim-signature"])
def test_validator_refuses_reserved_headers(name: str) -> None:
    body = valid_body()
    body["personalizations"][0]["headers"][name] = "x"
    assert f"personalizations.0.headers.{name}" in fields(validate_mail_send(body))
    body = valid_body()
    body["headers"] = {name: "x"}
    assert f"headers.{name}" in fields(validate_mail_send(body))


def test_validator_refuses_more_than_1000_personalizations() -> None:
    errors = validate_mail_send(valid_body(1001))
    assert "personalizations" in fields(errors)
    assert any("1000" in str(e["message"]) for e in errors)


def test_validator_refuses_more_than_1000_recipients_in_total() -> None:
    body = valid_body(2)
    body["personalizations"][0]["to"] = [{"email": f"a{i}@example.com"} for i in range(999)]
    body["personalizations"][1]["cc"] = [{"email": "b@example.com"}, {"email": "c@example.com"}]
    assert any("recipients" in str(e["message"]) for e in validate_mail_send(body))


def test_validator_refuses_html_before_text() -> None:
    body = valid_body()
    body["content"].reverse()
    assert "content" in fields(validate_mail_send(body))


def test_validator_refuses_an_address_twice_in_one_request() -> None:
    body = valid_body(2)
    body["personalizations"][1]["to"] = [{"email": "P0@Example.com"}]
    assert "personalizations.1.to.0.email" in fields(validate_mail_send(body))


def test_validator_refuses_what_the_schema_refuses() -> None:
    body = valid_body()
    body["personalizations"][0]["custom_args"]["delivery_id"] = 7
    body["custom_args"] = "campaign"  # the spec's string type is patched to an object
    body["personalizations"][0]["to"][0]["email"] = "not-an-address"
    del body["from"]
    found = fields(validate_mail_send(body))
    assert "personalizations.0.custom_args.delivery_id" in found
    assert "custom_args" in found
    assert "personalizations.0.to.0.email" in found
    assert None in found  # "'from' is a required property" is about the whole body


def test_the_server_answers_400_for_an_invalid_body(sendgrid_server: SendGridServer) -> None:

    import urllib.error
    import urllib.request

    body = valid_body()
    body["content"].reverse()
    request = urllib.request.Request(
        sendgrid_server.url + "/v3/mail/send",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {TEST_API_KEY}", "Content-Type": "application/json"},
    )
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=5)
    assert caught.value.code == 400
    errors = json.loads(caught.value.read())["errors"]
    assert errors[0]["field"] == "content" and errors[0]["help"] is None
    [seen] = sendgrid_server.refused()
    assert seen.status == 400 and not seen.accepted


@pytest.mark.parametrize(
    ("content_type", "status"),
    [("application/json", 202), ("application/json; charset=utf-8", 202), ("text/plain", 415)],
)
def test_the_server_checks_the_media_type_like_sendgrid(
    sendgrid_server: SendGridServer, content_type: str, status: int
) -> None:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(
        sendgrid_server.url + "/v3/mail/send",
        data=json.dumps(valid_body()).encode(),
        headers={"Authorization": f"Bearer {TEST_API_KEY}", "Content-Type": content_type},
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            answered = response.status
    except urllib.error.HTTPError as error:
        answered = error.code
        assert "application/json" in json.loads(error.read())["errors"][0]["message"]
    assert answered == status


def test_a_request_body_prints_as_its_size_not_its_addresses() -> None:
    body = sendgrid_module.request_json(
        sendgrid_module.build_campaign_body(
            CampaignMessage(CAMPAIGN, RenderedIssue("s", "S", "", "<p>x</p>", "x"), SENDER),
            load_test_options(),
        ),
        [b'{"to":[{"email":"ana@example.com"}]}'],
    )
    payload = body
    assert json.loads(payload)["personalizations"] == [{"to": [{"email": "ana@example.com"}]}]
    for shown in (str(payload), repr(payload), f"{payload}", f"{payload}"):
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
