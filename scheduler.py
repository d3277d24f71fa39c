"""The long-running scheduler: fires "send what is due" on the clinic's schedule.

Usage: python scheduler.py [--config PATH] [--log-json] [--lease-seconds N] [--poll-seconds N]

Several may run against one database: one fires, the others wait and take
over within a minute if it dies. SIGTERM (or Ctrl-C) stops taking firings, lets
the batch in hand finish and exits 0. This file only wires things together;
the work lives in ``pipeline.schedule.service``.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from pipeline.config import find_config, load_settings
from pipeline.errors import PipelineError
from pipeline.logs import configure_logging
from pipeline.schedule.service import SchedulerService, Timing
from pipeline.settings_check import check_services

log = logging.getLogger("pipeline.scheduler")


def _positive(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be more than 0")
    return value


def main(argv: list[str] | None = None) -> int:
    """Run the scheduler until SIGTERM or Ctrl-C; return the exit status."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--config", type=Path, default=None, help="settings file")
    parser.add_argument(
        "--log-json", action="store_true", help="log one JSON object per line (stderr)"
    )
    parser.add_argument(
        "--lease-seconds",
        type=_positive,
        default=Timing.lease,
        help="leader lease: a standby takes over at most 1.25 leases after the leader dies"
        " (default 45)",
    )
    parser.add_argument(
        "--poll-seconds",
        type=_positive,
        default=Timing.poll_every,
        help="how often due one-off sends are looked for (default 5)",
    )
    args = parser.parse_args(argv)
    configure_logging(json_lines=args.log_json)
    try:
        config = find_config(args.config).resolve()
        settings = load_settings(config)
        check_services(settings, config)
        service = SchedulerService(
            settings,
            config,
            timing=Timing.from_lease(args.lease_seconds, poll_every=args.poll_seconds),
        )
    except PipelineError as exc:
        log.error("%s", exc)
        return 1
    except SQLAlchemyError as exc:
        log.error("cannot open the database: %s", exc)
        return 1

    stop = threading.Event()

    def request_stop(signum: int, _frame: object) -> None:
        log.info("%s received: stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    service.start()
    # A bounded wait in a loop: signal handlers run in this thread between waits.
    while not stop.wait(1.0):
        pass
    service.stop(wait=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
