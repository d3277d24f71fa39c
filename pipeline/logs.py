"""Logging for the long-running services: plain lines, or one JSON object per line.

Everything goes to stderr through the standard :mod:`logging` module. With
``--log-json`` each record is one JSON object (time, level, logger, message,
plus any ``extra=`` fields such as ``slug`` or the campaign counts), so a log
collector can index it without parsing prose.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

# Attributes every LogRecord has; anything else on a record came in through ``extra=``.
_STANDARD_ATTRIBUTES = frozenset(
    vars(logging.LogRecord("", logging.INFO, "", 0, "", None, None))
) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ``time``, ``level``, ``logger``, ``message`` and extras."""

    def format(self, record: logging.LogRecord) -> str:
        """Render ``record`` as a single line of JSON."""
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRIBUTES and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


def configure_logging(
    *, json_lines: bool = False, level: int = logging.INFO, stream: TextIO | None = None
) -> None:
    """Send every log record to ``stream`` (stderr), as text or as JSON lines."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(
        JsonFormatter()
        if json_lines
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # APScheduler says "Running job ..." at INFO for every poll; our own lines
    # say what fired. Its warnings (a job store it cannot reach) still show.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    # Alembic announces its dialect each time a job opens the database.
    logging.getLogger("alembic").setLevel(logging.WARNING)
