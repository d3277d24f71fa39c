"""Nothing tuned: an API send keeps several requests in flight when answers are slow (#18).

The loopback SendGrid holds every answer LATENCY seconds (a real API's round
trip, long next to the few milliseconds a batch of 100 takes to build). After
the first answer the lanes follow that time (pipeline.sending.lanes), so four
requests read within LATENCY of each other were all out at once; one or two
lanes could never have that. Against a provider that answers at once, the
lanes never given a turn are never started.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from pipeline.config import load_settings
from pipeline.newsletter import Newsletter
from pipeline.sending.lanes import START
from pipeline.sending.plan import API_LANES, SendPlan
from pipeline.sending.runner import CampaignRunner
from pipeline.sending.transports.base import (
    CampaignMessage,
    DeliveryResult,
    Outcome,
    Recipient,
    Transport,
)
from pipeline.subscribers import import_csv
from tests.fakes.sendgrid_server import TEST_API_KEY, SendGridServer
from tests.helpers import SAMPLE_SLUG, copy_sample_folder
from tests.sending.ledger_claims.helpers import _newsletter as _sample_newsletter

AUDIENCE = 800
BATCH = 100
LATENCY = 0.5


@pytest.fixture(name="server")
def server_fixture(monkeypatch: pytest.MonkeyPatch) -> Iterator[SendGridServer]:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    with SendGridServer(latency=LATENCY) as server:
        yield server


def _newsletter(tmp_path: Path, server: SendGridServer, database_url: str) -> Newsletter:
    config = copy_sample_folder(tmp_path / "clinic")
    text = config.read_text(encoding="utf-8")
    # The sample's [sending] with only the transport and batch size changed: no tuning.
    text = text.replace('transport = "outbox"', 'transport = "sendgrid"')
    text = text.replace("batch_size = 1000", f"batch_size = {BATCH}")
    config.write_text(text + "\n[sendgrid]\ntimeout = 60\n", encoding="utf-8")
    environ = {
        "SENDGRID_API_KEY": TEST_API_KEY,
        "SENDGRID_API_HOST": server.url,
        "NEWSLETTER_SECRET_KEY": "auto-lanes",
        "NEWSLETTER_DATABASE_URL": database_url,
    }
    newsletter = Newsletter(load_settings(config, environ=environ))
    csv = tmp_path / "audience.csv"
    csv.write_text(
        "email\n" + "".join(f"reader{i:04d}@example.com\n" for i in range(AUDIENCE)),
        encoding="utf-8",
    )
    assert not import_csv(newsletter.sessions, csv).problems
    return newsletter


def test_default_settings_keep_several_api_requests_in_flight(
    server: SendGridServer, tmp_path: Path, database_url: str
) -> None:
    newsletter = _newsletter(tmp_path, server, database_url)
    assert newsletter.settings.sending.concurrency is None  # auto, as `init` writes it
    plans: list[SendPlan] = []
    report = newsletter.send(SAMPLE_SLUG, on_plan=plans.append)
    # A campaign this small does not repay a fork: one process, lanes on auto.
    assert plans == [SendPlan(API_LANES, 1, adaptive=True)]
    assert report.complete and report.counts.sent == AUDIENCE
    arrivals = sorted(r.received_at for r in server.requests)
    # At least one request a batch: on PostgreSQL, lanes claiming the last rows at
    # the same moment skip each other's (SKIP LOCKED), so the tail can come in two.
    assert len(arrivals) >= AUDIENCE // BATCH
    # Each request is answered LATENCY after it arrives: four arrivals within
    # LATENCY of each other were four requests in flight at once.
    overlap = max(
        sum(1 for later in arrivals if first <= later < first + LATENCY) for first in arrivals
    )
    assert overlap >= 4
    delivered = collections.Counter(server.delivered_addresses())
    assert len(delivered) == AUDIENCE and max(delivered.values()) == 1
    newsletter.close()


class _InstantApi(Transport):
    """An API that answers at once (no wait at all): the lanes' work is all CPU."""

    name = "instant"
    kind = "api"

    def __init__(self, lanes: set[str]) -> None:
        super().__init__()
        self.lanes = lanes

    def send_batch(
        self, message: CampaignMessage, recipients: Sequence[Recipient]
    ) -> list[DeliveryResult]:
        self.lanes.add(threading.current_thread().name)
        return [
            DeliveryResult(r, Outcome.SENT, message_id=f"<{r.delivery_id}@x>") for r in recipients
        ]


def test_lanes_never_given_a_turn_are_never_started(tmp_path: Path, database_url: str) -> None:
    newsletter = _sample_newsletter(tmp_path, database_url)
    sending: set[str] = set()
    runner = CampaignRunner(
        newsletter.ledger,
        lambda: _InstantApi(sending),
        sender=newsletter.sender(),
        links=newsletter.links(),
        batch_size=1,
        clock=newsletter.clock,
        concurrency=None,  # auto, as `init` writes it
        processes=1,
    )
    started: list[str] = []
    lane_in_thread = runner._lane_in_thread

    def counted(*args: object) -> None:
        started.append(threading.current_thread().name)
        lane_in_thread(*args)  # type: ignore[arg-type]

    runner._lane_in_thread = counted  # type: ignore[method-assign]
    campaign, _ = newsletter.plan(SAMPLE_SLUG)
    result = runner.run(campaign)

    # Five rows in batches of one: at most five lanes, one per batch.
    assert runner.last_plan == SendPlan(5, 1, adaptive=True)
    assert result.counts.sent == 5 and result.counts.pending == 0
    # START batches may be out before the first answer is timed; no answer wait
    # ever lets a third lane have a turn, so it was never started.
    assert len(started) == START - 1
    assert sending <= {threading.main_thread().name, *started}
    newsletter.close()
