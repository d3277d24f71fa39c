"""Fixtures the SendGrid transport tests share: a transport on the loopback SendGrid
(tests/fakes/sendgrid_server.py) with an injected clock and sleep."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pipeline.config import Settings, load_settings
from pipeline.content.articles import read_article
from pipeline.render import RenderedIssue, render_issue
from pipeline.sending.transports.base import CampaignMessage
from pipeline.sending.transports.sendgrid import SendGridTransport
from tests.fakes.sendgrid_server import (
    TEST_API_KEY,
    SendGridServer,
    sendgrid_server_fixture,  # noqa: F401 - registers the sendgrid_server fixture here
)
from tests.helpers import SAMPLE_SLUG, FixedClock
from tests.sending.sendgrid.helpers import (
    CAMPAIGN,
    ROOT,
    SENDER,
    TIMEOUT,
    FakeSleep,
    transport_for,
    tweak,
)


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


@pytest.fixture(name="sleep")
def sleep_fixture() -> FakeSleep:
    return FakeSleep()


@pytest.fixture(name="clock")
def clock_fixture() -> FixedClock:
    return FixedClock()


@pytest.fixture(name="transport")
def transport_fixture(settings: Settings, clock: FixedClock, sleep: FakeSleep) -> SendGridTransport:
    return transport_for(settings, clock, sleep)
