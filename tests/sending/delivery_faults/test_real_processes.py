"""Senders as real CLI processes: kill -9, resending what is in doubt, two at once, SIGTERM."""

from __future__ import annotations

import collections
import concurrent.futures
import signal
from pathlib import Path

from tests.fakes.sendgrid_server import Hang, SendGridServer
from tests.helpers import SAMPLE_SLUG
from tests.sending.delivery_faults.helpers import _cli, _exactly_once, _folder, _import, _status

# -- real processes ---------------------------------------------------------------


def test_kill_9_mid_campaign_then_resume(
    sendgrid_server: SendGridServer,
    clinic: tuple[Path, list[str]],
    tmp_path: Path,
    database_url: str,
) -> None:
    config, emails = clinic
    db = database_url
    _import(config, sendgrid_server, tmp_path, db)
    sendgrid_server.script(None, Hang(accept=True))
    sender = _cli(config, sendgrid_server, "send", SAMPLE_SLUG, "--yes", database_url=db)
    sendgrid_server.wait_for_requests(2, timeout=60)
    sender.send_signal(signal.SIGKILL)
    sender.wait(timeout=30)
    sendgrid_server.release()

    resume = _cli(config, sendgrid_server, "send", SAMPLE_SLUG, "--yes", database_url=db)
    _out, err = resume.communicate(timeout=120)
    assert resume.returncode == 1, err  # the in-flight batch is in doubt, and said so
    assert "1000 uncertain" in err
    counts = _status(config, sendgrid_server, db)
    assert (counts["sent"], counts["uncertain"], counts["pending"]) == (1500, 1000, 0)
    assert counts["sending"] == 0
    # The hung request had reached the server: everyone has it, nobody twice.
    _exactly_once(sendgrid_server, emails)


def test_one_resend_uncertain_run_after_kill_9_finishes_the_campaign(
    sendgrid_server: SendGridServer,
    clinic: tuple[Path, list[str]],
    tmp_path: Path,
    database_url: str,
) -> None:
    config, emails = clinic
    db = database_url
    _import(config, sendgrid_server, tmp_path, db)
    sendgrid_server.script(None, Hang(accept=True))
    first = ("send", SAMPLE_SLUG, "--yes", "--skip-preflight")  # preflight is not the point here
    sender = _cli(config, sendgrid_server, *first, database_url=db)
    sendgrid_server.wait_for_requests(2, timeout=60)
    sender.send_signal(signal.SIGKILL)
    sender.wait(timeout=30)
    sendgrid_server.release()
    # The killed batch is still `sending`: the flag must expire it before requeueing it.
    resend = _cli(
        config, sendgrid_server, "send", SAMPLE_SLUG, "--resend-uncertain", "--yes", database_url=db
    )
    out, err = resend.communicate(timeout=120)
    assert resend.returncode == 0, err
    assert "1000 uncertain row(s) sent again" in out
    counts = _status(config, sendgrid_server, db)
    assert counts["sent"] == counts["planned"] == 2500
    assert counts["uncertain"] == counts["sending"] == counts["pending"] == 0
    # The owner chose a duplicate over a miss: the batch in doubt went twice, nobody else.
    delivered = collections.Counter(sendgrid_server.delivered_addresses())
    assert set(delivered) == set(emails)
    assert sum(1 for n in delivered.values() if n == 2) == 1000 and max(delivered.values()) == 2


def test_two_senders_at_once_never_send_a_row_twice(
    sendgrid_server: SendGridServer, tmp_path: Path, database_url: str
) -> None:
    config, emails = _folder(tmp_path, 6000)
    text = config.read_text(encoding="utf-8").replace("batch_size = 1000", "batch_size = 250")
    config.write_text(text, encoding="utf-8")
    db = database_url
    _import(config, sendgrid_server, tmp_path, db)
    senders = [
        _cli(config, sendgrid_server, "send", SAMPLE_SLUG, "--yes", database_url=db)
        for _ in range(2)
    ]
    results = [p.communicate(timeout=180) for p in senders]
    for proc, (_out, err) in zip(senders, results, strict=True):
        assert proc.returncode == 0, err
    _exactly_once(sendgrid_server, emails)
    counts = _status(config, sendgrid_server, db)
    assert counts["sent"] == counts["planned"] == 6000


def test_sigterm_finishes_the_batch_in_hand_and_leaves_the_ledger_consistent(
    sendgrid_server: SendGridServer, clinic: tuple[Path, list[str]], tmp_path: Path
) -> None:
    config, emails = clinic
    _import(config, sendgrid_server, tmp_path)
    sendgrid_server.script(Hang(accept=True, answer_on_release=True))
    sender = _cli(config, sendgrid_server, "send", SAMPLE_SLUG, "--yes")
    sendgrid_server.wait_for_requests(1, timeout=60)
    sender.send_signal(signal.SIGTERM)
    # Answer the batch in hand only once the sender has taken the signal in.
    assert sender.stderr is not None
    stderr = sender.stderr

    def _until_stopping() -> str:
        # Preflight's warnings come first; the line that matters follows them.
        for line in iter(stderr.readline, ""):
            if "stopping after the batch in hand" in line:
                return line
        return ""

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        line = pool.submit(_until_stopping).result(timeout=30)
    assert "stopping after the batch in hand" in line
    sendgrid_server.release()
    _out, err = sender.communicate(timeout=60)
    assert sender.returncode == 1, err  # stopped early: not everything was sent
    assert "stopped on request" in err
    counts = _status(config, sendgrid_server)
    assert counts["sending"] == 0 and counts["uncertain"] == 0
    assert counts["sent"] + counts["pending"] == counts["planned"] == 2500
    assert len(sendgrid_server.requests) == 1  # nothing new taken after SIGTERM
    resume = _cli(config, sendgrid_server, "send", SAMPLE_SLUG, "--yes")
    assert resume.wait(timeout=120) == 0
    _exactly_once(sendgrid_server, emails)
