"""Child process of ``bench/run.py``: one full campaign through the ledger; print peak RSS.

Kept apart from run.py so the measurement carries only what ``newsletter send``
itself imports (not the benchmark's test server and HTTP client).
Usage: python bench/campaign_memory.py FOLDER SLUG
"""

from __future__ import annotations

import json
import resource
import sys
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline.config import load_settings
from pipeline.newsletter import Newsletter
from pipeline.sending.transports import (
    TRANSPORTS,
    CampaignMessage,
    DeliveryResult,
    Outcome,
    Recipient,
    Transport,
)


class DiscardTransport(Transport):
    """Accepts every message and keeps nothing: the ledger path without any I/O."""

    name = "discard"

    def send_batch(
        self, message: CampaignMessage, recipients: Sequence[Recipient]
    ) -> list[DeliveryResult]:
        return [DeliveryResult(r, Outcome.SENT, message_id="<bench@localhost>") for r in recipients]


def main(folder: Path, slug: str) -> None:
    TRANSPORTS["discard"] = lambda env: DiscardTransport()
    settings = load_settings(folder / "newsletter.toml", environ={"NEWSLETTER_SECRET_KEY": "b"})
    sending = settings.sending.model_copy(update={"transport": "discard"})
    newsletter = Newsletter(settings.model_copy(update={"sending": sending}))
    report = newsletter.send(slug)
    print(json.dumps({"sent": report.counts.sent, "peak_mib": peak_rss_kib() / 1024}))


def peak_rss_kib() -> int:
    """This process's peak RSS since exec.

    ``ru_maxrss`` is not reset by exec on Linux, so a child started from a big
    parent would report the parent's peak; ``VmHWM`` belongs to this image only.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2])
