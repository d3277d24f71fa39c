"""A large campaign over one SMTP connection, and the exact message the server receives."""

from __future__ import annotations

from pipeline.config import Settings
from pipeline.sending.transports import make_transport
from pipeline.sending.transports.base import DeliveryResult, Outcome, Recipient
from tests.fakes.smtp_server import SmtpTestServer
from tests.helpers import FixedClock
from tests.sending.smtp.helpers import (
    ISSUE,
    FakeSleep,
    campaign,
    configure,
    outcomes,
    recipients,
    transport_for,
)

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
