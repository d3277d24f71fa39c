"""SMTP replies per recipient: refusals, temporary failures and backoff, stops, SMTPUTF8."""

from __future__ import annotations

from pipeline.config import Settings
from pipeline.sending.transports import TransportEnv
from pipeline.sending.transports.base import Outcome, Recipient
from pipeline.sending.transports.smtp import SmtpTransport
from tests.fakes.smtp_server import SmtpTestServer
from tests.helpers import FixedClock, stop_while_waiting
from tests.sending.smtp.helpers import (
    FakeSleep,
    campaign,
    configure,
    outcomes,
    recipients,
    transport_for,
)

# -- replies -------------------------------------------------------------------------


def test_a_550_fails_that_recipient_and_the_others_are_sent(
    base_settings: Settings, sleep: FakeSleep
) -> None:
    with SmtpTestServer() as server:
        settings = configure(base_settings, server.port)
        people = recipients(5)
        server.refuse(people[2].email, code=550)
        with transport_for(settings, sleep) as transport:
            results = transport.send_batch(campaign(settings), people)

        assert outcomes(results) == [Outcome.SENT] * 2 + [Outcome.FAILED] + [Outcome.SENT] * 2
        error = results[2].error or ""
        assert "550" in error and "User unknown" in error
        assert results[2].message_id is None
        assert sorted(server.recipients) == sorted(p.email for p in people if p != people[2])
        assert server.connections == 1
        assert sleep.calls == []


def test_a_451_twice_then_accepted_is_sent_after_backoff(
    base_settings: Settings, sleep: FakeSleep
) -> None:
    with SmtpTestServer() as server:
        settings = configure(base_settings, server.port, max_retries=3)
        people = recipients(3)
        server.refuse(people[1].email, code=451, times=2)
        with transport_for(settings, sleep) as transport:
            results = transport.send_batch(campaign(settings), people)

        assert outcomes(results) == [Outcome.SENT] * 3
        assert sleep.calls == [1.0, 2.0]  # exponential, and no real sleeping
        assert server.handler.rcpt_attempts(people[1].email) == 3
        assert server.recipients.count(people[1].email) == 1
        assert server.connections == 1


def test_a_451_forever_defers_that_recipient_only(
    base_settings: Settings, sleep: FakeSleep
) -> None:
    with SmtpTestServer() as server:
        settings = configure(base_settings, server.port, max_retries=3)
        people = recipients(3)
        server.refuse(people[0].email, code=451)
        with transport_for(settings, sleep) as transport:
            results = transport.send_batch(campaign(settings), people)

        assert outcomes(results) == [Outcome.DEFERRED, Outcome.SENT, Outcome.SENT]
        assert "451" in (results[0].error or "")
        assert sleep.calls == [1.0, 2.0, 4.0]
        assert server.handler.rcpt_attempts(people[0].email) == 4
        assert people[0].email not in server.recipients


def test_a_stop_requested_during_a_backoff_wait_ends_the_batch_early(
    base_settings: Settings,
) -> None:
    with SmtpTestServer() as server:
        settings = configure(base_settings, server.port, max_retries=5)
        people = recipients(3)
        server.refuse(people[0].email, code=451)
        waits: list[float] = []

        def sleep_then_stop(seconds: float) -> None:
            waits.append(seconds)
            transport.request_stop()  # as a signal handler would, mid-wait

        env = TransportEnv(settings=settings, clock=FixedClock(), sleep=sleep_then_stop)
        with SmtpTransport.from_env(env) as transport:
            results = transport.send_batch(campaign(settings), people)

        assert outcomes(results) == [Outcome.DEFERRED] * 3
        assert waits == [1.0]
        assert server.messages == []


def test_a_stop_ends_a_real_backoff_wait_within_a_second(base_settings: Settings) -> None:
    with SmtpTestServer() as server:
        settings = configure(base_settings, server.port, max_retries=5)
        people = recipients(3)
        server.refuse(people[0].email, code=451)
        # The real wait (no injected sleep): a minute before the first retry.
        transport = SmtpTransport(
            settings.smtp, from_email=settings.email.from_email, password=None,
            clock=FixedClock(), backoff=60.0,
        )  # fmt: skip
        results, took = stop_while_waiting(
            transport,
            lambda: transport.send_batch(campaign(settings), people),
            "pipeline.sending.transports.smtp",
            "retry 1 of 5 in 60.0 s",
        )
        assert took < 1.0
        assert outcomes(results) == [Outcome.DEFERRED] * 3
        assert server.messages == []


def test_a_non_ascii_address_goes_out_with_smtputf8(
    base_settings: Settings, sleep: FakeSleep
) -> None:
    with SmtpTestServer() as server:  # aiosmtpd offers SMTPUTF8
        settings = configure(base_settings, server.port)
        person = Recipient(email="jöe@example.com", first_name="Jöe", unsubscribe_url="http://x/u")
        with transport_for(settings, sleep) as transport:
            [result] = transport.send_batch(campaign(settings), [person])

        assert result.outcome is Outcome.SENT
        assert server.recipients == ["jöe@example.com"]
