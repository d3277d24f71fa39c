"""How the SendGrid transport handles each answer: rate limits, retries, refusals, timeouts."""

from __future__ import annotations

import logging
import socket
import time
from collections import Counter

import pytest
from pydantic import SecretStr

from pipeline.config import Settings
from pipeline.sending.transports import sendgrid as sendgrid_module
from pipeline.sending.transports.base import (
    CampaignMessage,
    Outcome,
    TransportStopError,
)
from pipeline.sending.transports.sendgrid import SendGridTransport
from tests.fakes.sendgrid_server import (
    Drop,
    Hang,
    Reply,
    SendGridServer,
)
from tests.helpers import FixedClock
from tests.sending.sendgrid.helpers import (
    HANG_TIMEOUT,
    FakeSleep,
    outcomes,
    people,
    transport_for,
    tweak,
)

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


def test_503_forever_is_deferred_after_max_retries(
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
    # The server records the request once it has checked the body against the schema,
    # which on a busy machine can end after the client gave up: wait for it (bounded).
    assert len(sendgrid_server.wait_for_requests(1)) == 1 and sleep.calls == []


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
