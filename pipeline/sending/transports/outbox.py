"""The default transport: one ``.eml`` file per recipient in a folder.

Nothing leaves the machine, so a new clinic can look at exactly what would be
sent. Files are written to a temporary name and renamed into place, so a crash
never leaves half a message, and the name is derived from the ledger row, so a
resend replaces a file instead of adding a second copy.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from pipeline.errors import UnsafeHeaderError
from pipeline.render.message import OutgoingEmail, build_message
from pipeline.sending.transports.base import DeliveryResult, Outcome, PerMessageTransport, Recipient

_UNSAFE = re.compile(r"[^A-Za-z0-9._@+-]+")


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so readers see the whole file or none of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp_name = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise


def outbox_file_name(recipient: Recipient) -> str:
    """``000042-jane@example.com.eml``: sortable by ledger row, readable by address."""
    prefix = f"{recipient.delivery_id:06d}-" if recipient.delivery_id is not None else "test-"
    return prefix + _UNSAFE.sub("_", recipient.email) + ".eml"


class OutboxTransport(PerMessageTransport):
    """Write messages to ``<outbox>/<campaign>/``."""

    name = "outbox"

    def __init__(self, directory: Path, clock: Callable[[], datetime]) -> None:
        super().__init__(clock)
        self.directory = directory

    def deliver(self, email: OutgoingEmail, recipient: Recipient) -> DeliveryResult:
        """Write one message file; a disk error fails this recipient, not the batch."""
        folder = self.directory / _UNSAFE.sub("_", email.campaign or "test-sends")
        try:
            message = build_message(email)
            write_atomically(folder / outbox_file_name(recipient), message.as_bytes())
        except UnsafeHeaderError as error:  # refused before a byte was written
            return DeliveryResult(recipient, Outcome.FAILED, error=str(error))
        except OSError as exc:
            return DeliveryResult(recipient, Outcome.FAILED, error=f"cannot write outbox: {exc}")
        return DeliveryResult(recipient, Outcome.SENT, message_id=str(message["Message-ID"]))
