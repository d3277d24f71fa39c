"""The SMTP transport against a real SMTP server on 127.0.0.1 (aiosmtpd, see smtp_server.py)."""

from __future__ import annotations

import logging
import shutil
import socket
import time
from pathlib import Path
from typing import Any

import pytest

from pipeline.config import Settings, load_settings
from pipeline.errors import ConfigError
from pipeline.render import RenderedIssue
from pipeline.render.message import Sender
from pipeline.sending.transports import TransportEnv, make_transport
from pipeline.sending.transports.base import (
    CampaignMessage,
    DeliveryResult,
    Outcome,
    Recipient,
    TransportStopError,
)
from pipeline.sending.transports.smtp import SmtpTransport
from tests.fakes.smtp_server import SmtpTestServer
from tests.helpers import ROOT, FixedClock, stop_while_waiting

PASSWORD = "s3cret-Pa55word!"
USER = "news@cloudformmassage.com.au"

ISSUE = RenderedIssue(
    slug="hip-pain-massage-therapy",
    subject="Hip Pain & How Massage Therapy Helps",
    preheader="Why hips hurt, and what a massage therapist does about it.",
    html=(
        "<!doctype html><html><body>"
        "<p>Hi %%first_name%%,</p><p>Your hips carry you all day.</p>"
        '<p><a href="%%unsubscribe_url%%">Unsubscribe</a></p>'
        "</body></html>"
    ),
    text=(
        "Hi %%first_name%%,\n\nYour hips carry you all day.\n\nUnsubscribe: %%unsubscribe_url%%\n"
    ),
)


class FakeSleep:
    """Records every wait instead of waiting."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@pytest.fixture
def base_settings(tmp_path: Path) -> Settings:
    shutil.copyfile(ROOT / "newsletter.toml", tmp_path / "newsletter.toml")
    return load_settings(
        tmp_path / "newsletter.toml",
        environ={"NEWSLETTER_SECRET_KEY": "t", "NEWSLETTER_SMTP_PASSWORD": PASSWORD},
    )


@pytest.fixture
def sleep() -> FakeSleep:
    return FakeSleep()


def configure(base: Settings, port: int, **smtp: Any) -> Settings:
    """Settings sending through 127.0.0.1:port (plain, no login unless overridden)."""
    values: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": port,
        "security": "none",
        "username": None,
        "timeout": 5.0,
        "max_retries": 3,
    }
    values.update(smtp)
    return base.model_copy(
        update={
            "smtp": base.smtp.model_copy(update=values),
            "sending": base.sending.model_copy(update={"transport": "smtp", "batch_size": 1000}),
        }
    )


def transport_for(
    settings: Settings, sleep: FakeSleep, server: SmtpTestServer | None = None
) -> SmtpTransport:
    context = server.client_context() if server and server.certificate else None
    env = TransportEnv(settings=settings, clock=FixedClock(), sleep=sleep)
    return SmtpTransport.from_env(env, ssl_context=context)


def campaign(settings: Settings) -> CampaignMessage:
    sender = Sender(
        email=settings.email.from_email,
        name=settings.email.from_name,
        reply_to=settings.email.reply_to,
    )
    return CampaignMessage(campaign="hip-pain-massage-therapy", issue=ISSUE, sender=sender)


def recipients(count: int, start: int = 0) -> list[Recipient]:
    return [
        Recipient(
            email=f"reader{i:05d}@example.com",
            first_name=f"Reader{i}",
            # long enough that a folding policy would have had to break it
            unsubscribe_url=f"http://127.0.0.1:8000/unsubscribe/{'t' * 90}.{i:05d}",
            delivery_id=i,
        )
        for i in range(start, start + count)
    ]


def outcomes(results: list[DeliveryResult]) -> list[Outcome]:
    return [result.outcome for result in results]


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


# -- volume and the message itself ---------------------------------------------------


def test_2500_recipients_in_batches_over_one_connection(
    base_settings: Settings, sleep: FakeSleep
) -> None:
    with SmtpTestServer() as server:
        settings = configure(base_settings, server.port)
        people = recipients(2500)
        size = settings.sending.batch_size
        results: list[DeliveryResult] = []
        # make_transport: the registry builds the SMTP transport from settings.
        with make_transport(settings, FixedClock(), sleep=sleep) as transport:
            for start in range(0, len(people), size):
                results += transport.send_batch(campaign(settings), people[start : start + size])

        assert outcomes(results) == [Outcome.SENT] * 2500
        assert all(result.message_id for result in results)
        assert sorted(server.recipients) == [person.email for person in people]
        assert server.connections == 1
        assert {message.connection for message in server.messages} == {1}
        assert sleep.calls == []


def test_the_message_is_the_built_mime_personalized(
    base_settings: Settings, sleep: FakeSleep
) -> None:
    with SmtpTestServer() as server:
        settings = configure(base_settings, server.port)
        jane = Recipient(
            email="jane@example.com",
            first_name="Jane",
            unsubscribe_url="http://127.0.0.1:8000/unsubscribe/" + "x" * 120,
            delivery_id=7,
        )
        with transport_for(settings, sleep) as transport:
            [result] = transport.send_batch(campaign(settings), [jane])

        assert result.outcome is Outcome.SENT
        [received] = server.messages
        assert received.mail_from == settings.email.from_email
        assert received.rcpt_tos == ("jane@example.com",)
        assert b"%%" not in received.data
        # One unfolded header line, exactly as build_message wrote it.
        assert f"List-Unsubscribe: <{jane.unsubscribe_url}>\r\n".encode() in received.data

        message = received.parsed()
        assert message["Message-ID"] == result.message_id
        assert message["To"] == "jane@example.com"
        assert message["Subject"] == ISSUE.subject
        assert message["List-Unsubscribe"] == f"<{jane.unsubscribe_url}>"
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert message.get_content_type() == "multipart/alternative"
        text, html = message.iter_parts()
        assert text.get_content_type() == "text/plain"
        assert html.get_content_type() == "text/html"
        assert "Hi Jane," in text.get_content()
        assert f"Unsubscribe: {jane.unsubscribe_url}" in text.get_content()
        assert "<p>Hi Jane,</p>" in html.get_content()
        assert f'href="{jane.unsubscribe_url}"' in html.get_content()


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


# -- connections ---------------------------------------------------------------------


def test_a_connection_dropped_between_messages_is_reopened(
    base_settings: Settings, sleep: FakeSleep
) -> None:
    with SmtpTestServer() as server:
        settings = configure(base_settings, server.port)
        people = recipients(6)
        server.drop_after(2)
        server.drop_after(4)
        with transport_for(settings, sleep) as transport:
            results = transport.send_batch(campaign(settings), people)

        assert outcomes(results) == [Outcome.SENT] * 6
        assert server.recipients == [p.email for p in people]  # nothing lost, nothing doubled
        assert server.connections == 3
        assert [m.connection for m in server.messages] == [1, 1, 2, 2, 3, 3]
        assert sleep.calls == []  # a stale connection is reopened at once


def test_the_connection_is_reused_across_batches_and_reopened_after_close(
    base_settings: Settings, sleep: FakeSleep
) -> None:
    with SmtpTestServer() as server:
        settings = configure(base_settings, server.port)
        transport = transport_for(settings, sleep)
        with transport:
            transport.send_batch(campaign(settings), recipients(2))
            transport.send_batch(campaign(settings), recipients(2, start=2))
        assert server.connections == 1
        with transport:
            transport.send_batch(campaign(settings), recipients(1, start=4))
        assert server.connections == 2
        assert len(server.recipients) == 5


def test_a_drop_after_the_content_went_out_is_uncertain_and_not_resent(
    base_settings: Settings, sleep: FakeSleep
) -> None:
    with SmtpTestServer() as server:
        settings = configure(base_settings, server.port)
        people = recipients(3)
        server.drop_before_reply(2)
        with transport_for(settings, sleep) as transport:
            results = transport.send_batch(campaign(settings), people)

        assert outcomes(results) == [Outcome.SENT, Outcome.UNCERTAIN, Outcome.SENT]
        assert results[1].message_id  # kept, so the message can be looked for
        assert "not resent" in (results[1].error or "")
        assert server.recipients == [p.email for p in people]  # the server did get it, once
        assert server.connections == 2


def test_nothing_listening_defers_the_whole_batch_after_one_retry_cycle(
    base_settings: Settings, sleep: FakeSleep
) -> None:
    settings = configure(base_settings, free_port(), max_retries=3)
    started = time.monotonic()
    with transport_for(settings, sleep) as transport:
        results = transport.send_batch(campaign(settings), recipients(50))
        assert sleep.calls == [1.0, 2.0, 4.0]  # once for the batch, not once per recipient
        # The next batch tries again (the server may be back), once more.
        again = transport.send_batch(campaign(settings), recipients(2, start=50))

    assert outcomes(results) == [Outcome.DEFERRED] * 50
    assert outcomes(again) == [Outcome.DEFERRED] * 2
    assert "cannot connect" in (results[0].error or "")
    assert "cannot connect" in (results[-1].error or "")
    assert sleep.calls == [1.0, 2.0, 4.0] * 2
    assert time.monotonic() - started < 5


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
