"""The scheduler's bounce-mail job: read ``[bounces]`` every few minutes (leader only)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

from pipeline.bounces.dsn import BounceReport
from pipeline.bounces.mailbox import BounceMailboxError, read_bounces
from pipeline.config import load_settings
from pipeline.store.db import make_engine, make_sessionmaker

log = logging.getLogger("pipeline.scheduler")


def read_bounce_mail(config_path: str) -> BounceReport | None:
    """One read of the bounce mailbox; a mailbox that cannot be read is logged, not raised."""
    settings = load_settings(Path(config_path))
    engine = make_engine(settings.database_url)
    try:
        report = read_bounces(settings, make_sessionmaker(engine), lambda: datetime.now(UTC))
    except BounceMailboxError as exc:
        # Tried again at the next interval; a wrong setting was refused at start already.
        log.warning("bounce mailbox: %s; trying again later", exc)
        return None
    finally:
        engine.dispose()
    if report is not None and report.messages:
        log.info(
            "bounce mailbox: %d message(s), %d subscriber(s) marked bounced, %d unknown,"
            " %d not a permanent failure",
            report.messages,
            len(report.bounced),
            len(report.unknown),
            report.not_bounces,
        )
    return report
