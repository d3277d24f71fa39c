"""Jobs the scheduler fires, referenced as ``module:function`` (never pickled code)."""

from __future__ import annotations

import logging
from pathlib import Path

from .config import load_settings
from .errors import NotFoundError
from .service import Newsletter, SendReport

log = logging.getLogger("pipeline.scheduler")


def send_due(config_path: str) -> SendReport | None:
    """Send the next queued article that is due; log and send nothing when none is."""
    newsletter = Newsletter(load_settings(Path(config_path)))
    try:
        try:
            slug = newsletter.resolve_slug(None)
        except NotFoundError:
            log.warning("schedule fired but no queued article is due: nothing sent")
            return None
        log.info("campaign %s: starting", slug)
        report = newsletter.send(slug)
        c = report.counts
        log.info(
            "campaign %s: done: %d planned, %d sent, %d failed, %d uncertain, %d suppressed",
            slug,
            c.planned,
            c.sent,
            c.failed,
            c.uncertain,
            c.suppressed,
        )
        return report
    finally:
        newsletter.close()
