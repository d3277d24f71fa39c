"""The long-running scheduler: fires "send what is due" on the clinic's schedule.

Usage: python scheduler.py [--config PATH]

This file only wires things together; the work lives in ``pipeline``.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from pathlib import Path

from pipeline.config import find_config, load_settings
from pipeline.errors import PipelineError
from pipeline.scheduling import build_scheduler


def main(argv: list[str] | None = None) -> int:
    """Run the scheduler until interrupted."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=None, help="settings file")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        config = find_config(args.config).resolve()
        settings = load_settings(config)
        scheduler = build_scheduler(settings, config, blocking=True)
    except PipelineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    with contextlib.suppress(KeyboardInterrupt, SystemExit):
        scheduler.start()
    return 0


if __name__ == "__main__":
    sys.exit(main())
