"""Constants and helpers the SendGrid transport tests share (fixtures: conftest.py)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pipeline.config import Settings
from pipeline.render.message import Sender
from pipeline.sending.transports import TransportEnv
from pipeline.sending.transports.base import DeliveryResult, Outcome, Recipient
from pipeline.sending.transports.sendgrid import SendGridTransport
from tests.helpers import FixedClock

ROOT = Path(__file__).resolve().parents[3]
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


def tweak(settings: Settings, **sendgrid: Any) -> Settings:
    """Settings with some ``[sendgrid]`` options changed."""
    return settings.model_copy(update={"sendgrid": settings.sendgrid.model_copy(update=sendgrid)})


def transport_for(settings: Settings, clock: FixedClock, sleep: FakeSleep) -> SendGridTransport:
    return SendGridTransport.from_env(TransportEnv(settings=settings, clock=clock, sleep=sleep))


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
