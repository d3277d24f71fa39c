"""The send rows of ``make bench``: the raw ceiling, and campaigns with defaults or tuned.

Every send goes through the SendGrid transport to the loopback SendGrid of
``sendgrid_process.py`` (its own process, parsing every body). "Defaults" is
the folder ``newsletter init`` writes with only the transport changed, so
``[sending] concurrency`` and ``processes`` are auto; "tuned" sets them to
:data:`TUNED`. A send is timed from ``Newsletter.send`` (planning included) to
its report: what a ``newsletter send`` takes less the fixed start-up of any
command (interpreter, imports, settings, opening the database).
"""

from __future__ import annotations

import http.client
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from common import ROOT, settings_for, write_csv
from sendgrid_process import SendGridProcess

from pipeline.newsletter import Newsletter
from pipeline.sending.plan import SendPlan
from pipeline.sending.transports import CampaignMessage, Recipient
from pipeline.sending.transports.sendgrid import build_campaign_body, build_personalization
from pipeline.subscribers import import_csv
from tests.fakes.sendgrid_server import TEST_API_KEY
from tests.helpers import SAMPLE_SLUG, copy_sample_folder

#: (processes, lanes) of the tuned rows.
TUNED = (2, 2)
#: Seconds the latency rows' server holds each answer (a real API's round trip).
LATENCY = 0.15


@dataclass(frozen=True)
class SendRun:
    """One timed campaign."""

    seconds: float
    audience: int
    plan: str

    @property
    def rate(self) -> float:
        return self.audience / self.seconds


def sendgrid_folder(work: Path, processes: int | None = None, lanes: int | None = None) -> Path:
    """A sample folder on SendGrid; lanes/processes None: left to auto, as `init` writes it."""
    folder = work / "clinic"
    # No preflight runs here: no loopback DNS server (its thread would outlive the run).
    config = copy_sample_folder(folder, hermetic_dns=False)
    sending = 'transport = "sendgrid"'
    if processes is not None:
        sending += f"\nprocesses = {processes}"
    if lanes is not None:
        sending += f"\nconcurrency = {lanes}"
    text = config.read_text(encoding="utf-8").replace('transport = "outbox"', sending)
    config.write_text(text, encoding="utf-8")
    return folder


def bench_send(
    work: Path,
    server: SendGridProcess,
    database_url: str,
    audience: int,
    tuned: bool,
) -> SendRun:
    """One campaign of ``audience`` through SendGrid; checks everyone arrived once."""
    processes, lanes = TUNED if tuned else (None, None)
    folder = sendgrid_folder(work, processes, lanes)
    environ = {
        "SENDGRID_API_KEY": TEST_API_KEY,
        "SENDGRID_API_HOST": server.url,
        "NEWSLETTER_DATABASE_URL": database_url,
    }
    newsletter = Newsletter(settings_for(folder, environ))
    csv = work.parent / f"send-audience-{audience}.csv"
    if not csv.exists():
        write_csv(csv, audience)
    import_csv(newsletter.sessions, csv)
    plans: list[SendPlan] = []
    before = server.delivered()
    start = time.perf_counter()
    report = newsletter.send(SAMPLE_SLUG, on_plan=plans.append)
    elapsed = time.perf_counter() - start
    newsletter.close()
    received = server.delivered() - before
    # The ledger sent every row and the server took as many: each exactly once.
    if report.counts.sent != audience or received != audience:
        raise SystemExit(
            f"send benchmark: ledger says {report.counts.sent} sent, "
            f"server received {received}, of {audience}"
        )
    first = plans[0] if plans else None
    plan = (
        f"{first.processes} x {'up to ' if first.adaptive else ''}{first.lanes}" if first else "?"
    )
    return SendRun(elapsed, audience, plan)


def serial_seconds(audience: int, batch: int = 1000) -> float:
    """One request at a time, each waiting :data:`LATENCY`: the latency row's reference."""
    return math.ceil(audience / batch) * LATENCY


def ceiling_payloads(work: Path, audience: int) -> list[dict[str, Any]]:
    """The campaign's request bodies as plain dicts, built once, outside any timing.

    Each personalization is the transport's own (its JSON read back), so the
    ceiling posts what the campaign posts, but serialized by ``json``.
    """
    settings = settings_for(ROOT, {})
    folder = sendgrid_folder(work)
    newsletter = Newsletter(settings_for(folder, {"SENDGRID_API_KEY": TEST_API_KEY}))
    issue = newsletter.render(SAMPLE_SLUG)
    message = CampaignMessage(campaign=SAMPLE_SLUG, issue=issue, sender=newsletter.sender())
    campaign = build_campaign_body(message, settings.sendgrid)
    payloads = []
    base = settings.web.base_url
    for start in range(0, audience, 1000):
        personalizations = [
            json.loads(
                build_personalization(
                    campaign,
                    Recipient(
                        email=f"reader{i:07d}@example.com",
                        first_name=f"Reader{i}",
                        unsubscribe_url=f"{base}/unsubscribe/"
                        + newsletter.signer.issue("unsubscribe", i, f"reader{i:07d}@example.com"),
                        delivery_id=i,
                        subscriber_id=i,
                    ),
                )
            )
            for i in range(start, min(start + 1000, audience))
        ]
        payloads.append({**campaign.shared, "personalizations": personalizations})
    newsletter.close()
    return payloads


def bench_ceiling(server: SendGridProcess, payloads: list[dict[str, Any]]) -> float:
    """The payloads serialized (json) and POSTed (http.client, one kept-alive connection)."""
    url = urlsplit(server.url)
    headers = {"Authorization": f"Bearer {TEST_API_KEY}", "Content-Type": "application/json"}
    connection = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=60)
    try:
        start = time.perf_counter()
        for payload in payloads:
            connection.request("POST", "/v3/mail/send", json.dumps(payload).encode(), headers)
            response = connection.getresponse()
            response.read()
            if response.status != 202:
                raise SystemExit(f"ceiling: the server answered {response.status}")
        elapsed = time.perf_counter() - start
    finally:
        connection.close()
    return sum(len(p["personalizations"]) for p in payloads) / elapsed
