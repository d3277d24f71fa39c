"""Where bounce mail is read from: a local Maildir, or an IMAP folder over TLS.

Each reader hands over the messages it has not handed over before, and only
after :func:`read_bounces` has recorded what they said does it remember them
(:meth:`MailReader.done`): a crash in between reads them again, which is
harmless, since marking someone bounced twice changes nothing. Remembered
means moved from ``new/`` to ``cur/`` with the Seen flag (Maildir), or
flagged ``\\Seen`` (IMAP; fetched with ``BODY.PEEK`` so reading alone marks
nothing). Messages that are not bounces are remembered too: counted once.
"""

from __future__ import annotations

import contextlib
import imaplib
import os
import ssl
from collections.abc import Callable
from datetime import datetime
from email.message import Message
from pathlib import Path
from typing import Protocol

from sqlalchemy.orm import Session, sessionmaker

from pipeline.bounces.dsn import BounceReport, apply_bounces, parse
from pipeline.config import Settings
from pipeline.errors import PipelineError

#: At most this many messages per read: a flood is worked through over several reads.
MAX_PER_READ = 500


class BounceMailboxError(PipelineError, OSError):
    """The bounce mailbox cannot be read (missing folder, refused login, network)."""


class MailReader(Protocol):
    def unread(self) -> list[tuple[str, bytes]]:
        """(key, raw message) for each message not handed over before."""

    def done(self, keys: list[str]) -> None:
        """Remember these messages as read."""

    def close(self) -> None:
        """Let go of the mailbox."""


class MaildirReader:
    """A Maildir: new messages are files in ``new/``; read ones move to ``cur/``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        if not (path / "new").is_dir() or not (path / "cur").is_dir():
            raise BounceMailboxError(f"bounces.maildir: {path} is not a Maildir (no new/, cur/)")

    def unread(self) -> list[tuple[str, bytes]]:
        names = sorted(n for n in os.listdir(self.path / "new") if not n.startswith("."))
        found = []
        for name in names[:MAX_PER_READ]:
            try:
                found.append((name, (self.path / "new" / name).read_bytes()))
            except FileNotFoundError:
                continue  # another reader took it
        return found

    def done(self, keys: list[str]) -> None:
        for name in keys:
            # Maildir's "info" suffix: version 2, flag S (seen).
            try:
                os.rename(self.path / "new" / name, self.path / "cur" / f"{name}:2,S")
            except FileNotFoundError:
                continue

    def close(self) -> None:
        return None


class ImapReader:
    """An IMAP folder over TLS (``imaplib.IMAP4_SSL``); unread = not ``\\Seen``."""

    def __init__(
        self,
        host: str,
        port: int,
        username: str,
        password: str,
        folder: str,
        ssl_context: ssl.SSLContext | None = None,
        timeout: float = 30.0,
    ) -> None:
        try:
            self._imap = imaplib.IMAP4_SSL(
                host, port, ssl_context=ssl_context or ssl.create_default_context(), timeout=timeout
            )
            self._imap.login(username, password)
            status, _ = self._imap.select(_quoted(folder))
        except (OSError, imaplib.IMAP4.error) as exc:
            raise BounceMailboxError(f"bounces: IMAP {host}:{port}: {exc}") from None
        if status != "OK":
            self.close()
            raise BounceMailboxError(f"bounces.imap_folder: {folder!r} cannot be opened")

    def unread(self) -> list[tuple[str, bytes]]:
        try:
            status, data = self._imap.uid("SEARCH", "UNSEEN")
            uids = data[0].split() if status == "OK" and data and data[0] else []
            found = []
            for uid in uids[:MAX_PER_READ]:
                status, parts = self._imap.uid("FETCH", uid, "(BODY.PEEK[])")
                body = next((p[1] for p in parts if isinstance(p, tuple)), None)
                if status == "OK" and isinstance(body, bytes):
                    found.append((uid.decode("ascii"), body))
            return found
        except (OSError, imaplib.IMAP4.error) as exc:
            raise BounceMailboxError(f"bounces: IMAP: {exc}") from None

    def done(self, keys: list[str]) -> None:
        if keys:
            try:
                self._imap.uid("STORE", ",".join(keys), "+FLAGS", "(\\Seen)")
            except (OSError, imaplib.IMAP4.error) as exc:
                raise BounceMailboxError(f"bounces: IMAP: {exc}") from None

    def close(self) -> None:
        with contextlib.suppress(OSError, imaplib.IMAP4.error):
            self._imap.logout()


def _quoted(folder: str) -> str:
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'


def open_reader(settings: Settings) -> MailReader | None:
    """The reader ``[bounces]`` asks for; None when no mailbox is configured."""
    bounces = settings.bounces
    if bounces.maildir is not None:
        return MaildirReader(settings.root / bounces.maildir)
    if bounces.imap_host is not None and bounces.imap_username is not None:
        password = settings.imap_password
        if password is None:
            raise BounceMailboxError("bounces.imap_host is set but NEWSLETTER_IMAP_PASSWORD is not")
        return ImapReader(
            bounces.imap_host,
            bounces.imap_port,
            bounces.imap_username,
            password.get_secret_value(),
            bounces.imap_folder,
        )
    return None


def read_bounces(
    settings: Settings,
    sessions: sessionmaker[Session],
    now: Callable[[], datetime],
    reader: MailReader | None = None,
) -> BounceReport | None:
    """Read the bounce mailbox once; None when ``[bounces]`` configures none."""
    reader = reader or open_reader(settings)
    if reader is None:
        return None
    try:
        found = reader.unread()
        messages: list[Message] = [parse(data) for _, data in found]
        report = apply_bounces(sessions, messages, now())
        reader.done([key for key, _ in found])
        return report
    finally:
        reader.close()
