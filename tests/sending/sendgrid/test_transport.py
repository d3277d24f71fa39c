"""Building and stopping the SendGrid transport, and the strict fake it is tested against."""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from typing import Any

import pytest

from pipeline.config import Settings
from pipeline.errors import ConfigError
from pipeline.sending.transports import TransportEnv, make_transport
from pipeline.sending.transports import sendgrid as sendgrid_module
from pipeline.sending.transports.base import (
    CampaignMessage,
    Outcome,
)
from pipeline.sending.transports.sendgrid import SendGridTransport
from tests.fakes.sendgrid_server import (
    TEST_API_KEY,
    Reply,
    SendGridServer,
    validate_mail_send,
)
from tests.helpers import FixedClock, stop_while_waiting
from tests.sending.sendgrid.helpers import (
    TIMEOUT,
    FakeSleep,
    outcomes,
    people,
    transport_for,
    tweak,
)

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


# -- stopping ------------------------------------------------------------------------


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
    results, took = stop_while_waiting(
        transport,
        lambda: transport.send_batch(message, people(3)),
        sendgrid_module.__name__,
        "trying again in",
    )
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
