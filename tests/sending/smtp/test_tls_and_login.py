"""SMTP over STARTTLS and implicit TLS, and logging in (never logging the password)."""

from __future__ import annotations

import logging

import pytest

from pipeline.config import Settings
from pipeline.errors import ConfigError
from pipeline.sending.transports import make_transport
from pipeline.sending.transports.base import Outcome, TransportStopError
from tests.fakes.smtp_server import SmtpTestServer
from tests.helpers import FixedClock
from tests.sending.smtp.helpers import (
    PASSWORD,
    USER,
    FakeSleep,
    campaign,
    configure,
    outcomes,
    recipients,
    transport_for,
)

# -- TLS and login -------------------------------------------------------------------


def test_starttls_with_login_sends_and_never_logs_the_password(
    base_settings: Settings, sleep: FakeSleep, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="pipeline")
    with SmtpTestServer(security="starttls", auth=(USER, PASSWORD)) as server:
        settings = configure(base_settings, server.port, security="starttls", username=USER)
        people = recipients(3)
        server.refuse(people[1].email, code=550)
        with transport_for(settings, sleep, server) as transport:
            results = transport.send_batch(campaign(settings), people)

        assert outcomes(results) == [Outcome.SENT, Outcome.FAILED, Outcome.SENT]
        assert server.handler.auth_attempts == [(USER, True)]
        assert server.connections == 1
    texts = [caplog.text, *(str(r.error) for r in results), repr(results)]
    assert not any(PASSWORD in text for text in texts)


def test_a_refused_login_stops_without_the_password(
    base_settings: Settings, sleep: FakeSleep, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="pipeline")
    with SmtpTestServer(security="starttls", auth=(USER, "another-password")) as server:
        settings = configure(base_settings, server.port, security="starttls", username=USER)
        with (
            transport_for(settings, sleep, server) as transport,
            pytest.raises(TransportStopError) as caught,
        ):
            transport.send_batch(campaign(settings), recipients(3))

        message = str(caught.value)
        assert "refused the login" in message and USER in message and "535" in message
        assert PASSWORD not in message and PASSWORD not in repr(caught.value)
        assert PASSWORD not in caplog.text
        assert caught.value.__context__ is None and caught.value.__cause__ is None
        assert server.messages == []
        assert sleep.calls == []  # retrying a wrong password cannot help


def test_a_login_refused_after_part_of_the_batch_left_defers_the_rest(
    base_settings: Settings, sleep: FakeSleep
) -> None:
    with SmtpTestServer(security="starttls", auth=(USER, PASSWORD)) as server:
        settings = configure(base_settings, server.port, security="starttls", username=USER)
        server.drop_after(1)

        def rotate_password(number: int) -> None:
            server.handler.auth = (USER, "rotated")  # changed while we were sending

        server.handler.on_message = rotate_password
        with transport_for(settings, sleep, server) as transport:
            # Raising would lose the first recipient's SENT: the rest defer instead.
            results = transport.send_batch(campaign(settings), recipients(3))
            assert outcomes(results) == [Outcome.SENT, Outcome.DEFERRED, Outcome.DEFERRED]
            assert all("refused the login" in (r.error or "") for r in results[1:])
            # A new batch has nothing handed over yet: now the campaign stops.
            with pytest.raises(TransportStopError, match="refused the login"):
                transport.send_batch(campaign(settings), recipients(3, start=3))
        assert server.recipients == [recipients(1)[0].email]
        assert sleep.calls == []


def test_a_login_refused_after_a_recipient_was_refused_keeps_that_refusal(
    base_settings: Settings, sleep: FakeSleep
) -> None:
    with SmtpTestServer(security="starttls", auth=(USER, PASSWORD)) as server:
        settings = configure(base_settings, server.port, security="starttls", username=USER)
        people = recipients(3, start=1)
        # The mailbox does not exist; then the server drops the connection.
        server.handler.refuse(people[0].email, code=550, hang_up=True)
        with transport_for(settings, sleep, server) as transport:
            assert outcomes(transport.send_batch(campaign(settings), recipients(1))) == [
                Outcome.SENT
            ]
            server.handler.auth = (USER, "rotated")  # the reconnect's login is refused
            # Raising would send the refused address back to pending, to be tried
            # again and its bounce not marked: it is kept, and the rest defer.
            results = transport.send_batch(campaign(settings), people)
        assert outcomes(results) == [Outcome.FAILED, Outcome.DEFERRED, Outcome.DEFERRED]
        assert results[0].address_gone and "550" in (results[0].error or "")
        assert all("refused the login" in (r.error or "") for r in results[1:])
        assert server.recipients == [recipients(1)[0].email]


def test_security_tls_is_implicit_tls(base_settings: Settings, sleep: FakeSleep) -> None:
    with SmtpTestServer(security="tls", auth=(USER, PASSWORD)) as server:
        settings = configure(base_settings, server.port, security="tls", username=USER)
        with transport_for(settings, sleep, server) as transport:
            results = transport.send_batch(campaign(settings), recipients(3))

        assert outcomes(results) == [Outcome.SENT] * 3
        assert len(server.recipients) == 3
        assert server.connections == 1


def test_starttls_required_but_not_offered_stops_clearly(
    base_settings: Settings, sleep: FakeSleep
) -> None:
    with SmtpTestServer() as server:
        settings = configure(base_settings, server.port, security="starttls")
        with (
            transport_for(settings, sleep) as transport,
            pytest.raises(TransportStopError, match="does not offer STARTTLS"),
        ):
            transport.send_batch(campaign(settings), recipients(2))
        assert server.messages == []


def test_an_untrusted_certificate_stops_clearly(base_settings: Settings, sleep: FakeSleep) -> None:
    with SmtpTestServer(security="tls") as server:
        settings = configure(base_settings, server.port, security="tls")
        # The default context trusts the system's CAs, not the test certificate.
        with (
            transport_for(settings, sleep) as transport,
            pytest.raises(TransportStopError, match="cannot verify the TLS certificate"),
        ):
            transport.send_batch(campaign(settings), recipients(1))
        assert server.messages == []


def test_a_server_requiring_auth_without_a_username_stops(
    base_settings: Settings, sleep: FakeSleep
) -> None:
    with SmtpTestServer(auth=(USER, PASSWORD)) as server:
        settings = configure(base_settings, server.port)
        with (
            transport_for(settings, sleep) as transport,
            pytest.raises(TransportStopError, match="530"),
        ):
            transport.send_batch(campaign(settings), recipients(2))


def test_a_username_without_a_password_is_a_config_error(base_settings: Settings) -> None:
    settings = configure(base_settings, 2525, username=USER).model_copy(
        update={"smtp_password": None}
    )
    with pytest.raises(ConfigError, match="NEWSLETTER_SMTP_PASSWORD"):
        make_transport(settings, FixedClock())
