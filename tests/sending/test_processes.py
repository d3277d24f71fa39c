"""`[sending] processes`: forked helpers share one campaign, and a dead one loses nothing."""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from pipeline.config import load_settings
from pipeline.newsletter import Newsletter
from pipeline.store.models import Delivery, DeliveryStatus
from pipeline.subscribers import import_csv
from tests.fakes.sendgrid_server import TEST_API_KEY, Hang, SendGridServer
from tests.helpers import SAMPLE_SLUG, copy_sample_folder

AUDIENCE = 4000
BATCH = 250
HANG = Hang(accept=True, answer_on_release=True)


@pytest.fixture(name="server")
def server_fixture(monkeypatch: pytest.MonkeyPatch) -> Iterator[SendGridServer]:
    """A SendGrid fake whose hung requests wait long enough for the test to act."""
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    with SendGridServer(hang_timeout=90) as server:
        yield server


def _clinic(tmp_path: Path, server: SendGridServer, database_url: str) -> tuple[Newsletter, Path]:
    config = copy_sample_folder(tmp_path / "clinic")
    text = config.read_text(encoding="utf-8")
    # One lane each: every process holds exactly one batch while the server hangs.
    text = text.replace(
        'transport = "outbox"', 'transport = "sendgrid"\nprocesses = 2\nconcurrency = 1'
    )
    text = text.replace("batch_size = 1000", f"batch_size = {BATCH}")
    config.write_text(text + "\n[sendgrid]\ntimeout = 60\n", encoding="utf-8")
    newsletter = Newsletter(load_settings(config, environ=_environ(server, database_url)))
    csv = tmp_path / "audience.csv"
    csv.write_text("email\n" + "\n".join(_emails()) + "\n", encoding="utf-8")
    assert not import_csv(newsletter.sessions, csv).problems
    return newsletter, config


def _emails() -> list[str]:
    return [f"patient{i:05d}@example.com" for i in range(AUDIENCE)]


def _environ(server: SendGridServer, database_url: str) -> dict[str, str]:
    return {
        "SENDGRID_API_KEY": TEST_API_KEY,
        "SENDGRID_API_HOST": server.url,
        "NEWSLETTER_SECRET_KEY": "processes",
        "NEWSLETTER_DATABASE_URL": database_url,
    }


def _pid(owner: str) -> int:
    """The pid in a claim's owner (``host:pid:boot:pidns:nonce``, see pipeline.sending.senders)."""
    return int(owner.rsplit(":", 4)[1])


def _send(config: Path, server: SendGridServer, database_url: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NEWSLETTER_", "SENDGRID_"))}
    env.update(_environ(server, database_url))
    command = ["send", SAMPLE_SLUG, "--yes"]
    return subprocess.Popen(
        [sys.executable, "-m", "pipeline.cli", "--config", str(config), *command],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _owners(newsletter: Newsletter, status: DeliveryStatus | None = None) -> set[str]:
    query = select(Delivery.claimed_by).distinct()
    if status is not None:
        query = query.where(Delivery.status == status)
    with newsletter.sessions() as session:
        return {owner for owner in session.scalars(query) if owner}


def test_two_processes_share_a_campaign_and_send_each_address_once(
    server: SendGridServer, tmp_path: Path, database_url: str
) -> None:
    newsletter, config = _clinic(tmp_path, server, database_url)
    # The first request hangs, so whichever process sent it is held while the
    # other carries on: both are seen to work, without relying on timing.
    server.script(HANG)
    sender = _send(config, server, database_url)
    server.wait_for_requests(3, timeout=60)
    server.release()
    _out, err = sender.communicate(timeout=120)
    assert sender.returncode == 0, err

    delivered = collections.Counter(server.delivered_addresses())
    assert set(delivered) == set(_emails()) and max(delivered.values()) == 1
    [counts] = newsletter.status(SAMPLE_SLUG)
    assert (counts.sent, counts.pending, counts.sending) == (AUDIENCE, 0, 0)
    owners = _owners(newsletter)
    assert len(owners) == 2
    assert sender.pid in {_pid(o) for o in owners}  # the command's own process, and one helper
    newsletter.close()


def test_a_killed_helper_leaves_its_batch_uncertain_and_the_rest_is_sent(
    server: SendGridServer, tmp_path: Path, database_url: str
) -> None:
    newsletter, config = _clinic(tmp_path, server, database_url)
    server.always(HANG)  # every request is taken, then held: both processes wait
    sender = _send(config, server, database_url)
    server.wait_for_requests(2, timeout=60)
    in_flight = _owners(newsletter, DeliveryStatus.SENDING)
    [helper] = [o for o in in_flight if _pid(o) != sender.pid]
    os.kill(_pid(helper), signal.SIGKILL)  # mid-batch
    server.always(None)
    server.release()
    _out, err = sender.communicate(timeout=120)

    assert sender.returncode == 1, err  # not everything is known to be delivered
    assert "was killed (SIGKILL)" in err
    [counts] = newsletter.status(SAMPLE_SLUG)
    assert (counts.uncertain, counts.sent) == (BATCH, AUDIENCE - BATCH)
    assert (counts.pending, counts.sending) == (0, 0)
    # SendGrid took the dead helper's batch: it went once and is not sent again.
    delivered = collections.Counter(server.delivered_addresses())
    assert set(delivered) == set(_emails()) and max(delivered.values()) == 1
    newsletter.close()
