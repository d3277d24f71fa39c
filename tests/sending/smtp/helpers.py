"""Constants and helpers the SMTP transport tests share (fixtures: conftest.py)."""

from __future__ import annotations

from typing import Any

from pipeline.config import Settings
from pipeline.render import RenderedIssue
from pipeline.render.message import Sender
from pipeline.sending.transports import TransportEnv
from pipeline.sending.transports.base import CampaignMessage, DeliveryResult, Outcome, Recipient
from pipeline.sending.transports.smtp import SmtpTransport
from tests.fakes.smtp_server import SmtpTestServer
from tests.helpers import FixedClock

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
