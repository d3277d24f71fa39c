"""A sender that claims one batch and holds it: run as its own process by the ledger tests.

``python tests/fakes/claimer.py DATABASE_URL CAMPAIGN_ID SIZE [PID]`` claims SIZE rows
under this process's real identity, prints that identity and the claim token
on one line, then holds the claim (sends nothing) until its standard input
closes. With PID (in a fresh PID namespace, as root) the claiming process is
given that pid, so that the same number means nothing, or someone else, to
a process outside the namespace.
"""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from pipeline.sending.senders import sender_identity
from pipeline.store.db import make_engine, make_sessionmaker
from pipeline.store.ledger import Ledger


def _claim_and_hold(url: str, campaign_id: int, size: int) -> int:
    ledger = Ledger(make_sessionmaker(make_engine(url)))
    owner = sender_identity()
    claim = ledger.claim(campaign_id, size, datetime.now(UTC), owner)
    print(owner, claim.token, flush=True)
    sys.stdin.read()  # until the test closes our stdin (or is gone)
    return 0


def main(argv: list[str]) -> int:
    url, campaign_id, size = argv[0], int(argv[1]), int(argv[2])
    if len(argv) > 3:
        # The next pid this namespace hands out (needs CAP_SYS_ADMIN in it).
        try:
            with open("/proc/sys/kernel/ns_last_pid", "w", encoding="ascii") as handle:
                handle.write(str(int(argv[3]) - 1))
        except OSError:
            pass  # the test sees the pid it got and decides
        child = os.fork()
        if child == 0:
            os._exit(_claim_and_hold(url, campaign_id, size))
        _, status = os.waitpid(child, 0)
        return os.waitstatus_to_exitcode(status)
    return _claim_and_hold(url, campaign_id, size)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
