"""Fixtures and helpers the SendGrid transport tests share (test_sendgrid*.py)."""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from pipeline.config import Settings, load_settings
from pipeline.content.articles import read_article
from pipeline.render import RenderedIssue, render_issue
from pipeline.render.message import Sender
from pipeline.sending.transports import TransportEnv
from pipeline.sending.transports.base import (
    CampaignMessage,
    DeliveryResult,
    Outcome,
    Recipient,
)
from pipeline.sending.transports.sendgrid import SendGridTransport
from tests.fakes.sendgrid_server import TEST_API_KEY, SendGridServer
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


@pytest.fixture(name="issue", scope="module")
def issue_fixture() -> RenderedIssue:
    settings = load_settings(ROOT / "newsletter.toml", environ={"NEWSLETTER_SECRET_KEY": "t"})
    article = read_article(ROOT / "articles" / f"{SAMPLE_SLUG}.md", settings.schedule.tz)
    return render_issue(article, None, settings, archive_url=f"http://x/archive/{SAMPLE_SLUG}")


@pytest.fixture(name="message")
def message_fixture(issue: RenderedIssue) -> CampaignMessage:
    return CampaignMessage(campaign=CAMPAIGN, issue=issue, sender=SENDER)


@pytest.fixture(name="settings")
def settings_fixture(tmp_path: Path, sendgrid_server: SendGridServer) -> Settings:
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


@pytest.fixture(name="sleep")
def sleep_fixture() -> FakeSleep:
    return FakeSleep()


@pytest.fixture(name="clock")
def clock_fixture() -> FixedClock:
    return FixedClock()


def transport_for(settings: Settings, clock: FixedClock, sleep: FakeSleep) -> SendGridTransport:
    return SendGridTransport.from_env(TransportEnv(settings=settings, clock=clock, sleep=sleep))


@pytest.fixture(name="transport")
def transport_fixture(settings: Settings, clock: FixedClock, sleep: FakeSleep) -> SendGridTransport:
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
