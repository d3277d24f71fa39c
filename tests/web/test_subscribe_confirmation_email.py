"""The confirmation email through SendGrid (the loopback fake): valid against the schema,
retried in the background when the service fails, given up after a day."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from pipeline.newsletter import Newsletter
from pipeline.store import confirmations
from pipeline.web.app import create_app
from tests.fakes.sendgrid_server import (
    TEST_API_KEY,
    Drop,
    Reply,
    SendGridServer,
    sendgrid_server_fixture,  # noqa: F401 - provides the sendgrid_server fixture
)
from tests.helpers import FixedClock
from tests.web.helpers import NEW, make_newsletter, status_of, subscribe, subscriber, web_client

pytestmark = pytest.mark.anyio


async def test_confirmation_email_goes_through_sendgrid_valid_against_the_schema(
    tmp_path: Path, sendgrid_server: SendGridServer
) -> None:
    newsletter = make_newsletter(
        tmp_path / "sg",
        send=False,
        environ={"SENDGRID_API_KEY": TEST_API_KEY, "SENDGRID_API_HOST": sendgrid_server.url},
        edit_settings=lambda text: text.replace('transport = "outbox"', 'transport = "sendgrid"'),
    )
    async with web_client(create_app(newsletter)) as client:
        answer = await subscribe(client, NEW)
    assert "Check your inbox" in answer.text
    [request] = sendgrid_server.accepted()
    assert request.errors == ()
    [delivery] = sendgrid_server.deliveries()
    assert delivery.email == NEW
    assert delivery.custom_args["campaign"] == "confirm-subscription"
    assert delivery.custom_args["subscriber_id"] == str(subscriber(newsletter, NEW).id)


def sendgrid_newsletter(root: Path, server: SendGridServer, clock: FixedClock) -> Newsletter:
    return make_newsletter(
        root,
        clock=clock,
        send=False,
        environ={"SENDGRID_API_KEY": TEST_API_KEY, "SENDGRID_API_HOST": server.url},
        edit_settings=lambda text: text.replace('transport = "outbox"', 'transport = "sendgrid"'),
    )


async def test_a_failed_confirmation_email_is_retried_in_the_background(
    tmp_path: Path,
    clock: FixedClock,
    sendgrid_server: SendGridServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    newsletter = sendgrid_newsletter(tmp_path / "sg", sendgrid_server, clock)
    app = create_app(newsletter)
    sender = app.state.confirmations
    sendgrid_server.script(Reply.error(401, "bad key"), Drop())
    async with web_client(app, deliver=False) as client:
        answer = await subscribe(client, NEW)
    # The person sees what everyone sees: the mail service's trouble is ours to handle.
    assert answer.status_code == 200 and "Check your inbox" in answer.text
    with caplog.at_level(logging.WARNING, logger="pipeline.web.confirm_sender"):
        assert sender.step() == 1  # refused with 401
        assert sender.step() == 0  # not due again yet
        clock.advance(minutes=1)
        assert sender.step() == 1  # the connection drops: a transport error too
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2 and all("retrying at" in w for w in warnings)
    assert TEST_API_KEY not in " ".join(warnings)
    assert sendgrid_server.accepted() == [] and status_of(newsletter, NEW) == "pending"
    # The service is back: the next retry (5 minutes after the 2nd failure) sends it.
    clock.advance(minutes=4)
    assert sender.step() == 0
    clock.advance(minutes=1)
    assert sender.step() == 1
    [delivery] = sendgrid_server.deliveries()
    assert delivery.email == NEW
    assert confirmations.pending(newsletter.sessions) == []
    assert subscriber(newsletter, NEW).confirm_sent_at is not None


async def test_an_email_that_never_leaves_is_given_up_after_a_day(
    tmp_path: Path, clock: FixedClock, sendgrid_server: SendGridServer
) -> None:
    newsletter = sendgrid_newsletter(tmp_path / "sg", sendgrid_server, clock)
    app = create_app(newsletter)
    sendgrid_server.always(Reply.error(401, "bad key"))
    async with web_client(app, deliver=False) as client:
        await subscribe(client, NEW)
        for _ in range(30):
            app.state.confirmations.step()
            clock.advance(hours=1)
        assert confirmations.pending(newsletter.sessions) == []
        # Given up, the reservation is released: asking again works at once.
        assert subscriber(newsletter, NEW).confirm_sent_at is None
        sendgrid_server.always(None)
        await subscribe(client, NEW)
    app.state.confirmations.step()
    assert [d.email for d in sendgrid_server.deliveries()] == [NEW]
