"""The ``[bounces]`` section: where delivery status notifications are read from.

A module of its own needing only pydantic, so :mod:`pipeline.config` can type
``Settings.bounces`` without importing the readers (no import cycle).
Either ``maildir`` (a local mail server's Maildir) or ``imap_host`` (IMAP over
TLS; the password comes from ``NEWSLETTER_IMAP_PASSWORD``), not both; neither
means bounce mail is not read (SMTP replies and the SendGrid webhook still are).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator


class BouncesSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    maildir: Path | None = None
    imap_host: str | None = Field(default=None, min_length=1)
    imap_port: int = Field(default=993, ge=1, le=65535)
    imap_username: str | None = Field(default=None, min_length=1)
    imap_folder: str = Field(default="INBOX", min_length=1)
    #: How often the scheduler reads the mailbox, in seconds.
    every_seconds: float = Field(default=300.0, ge=10, le=86_400)

    @model_validator(mode="after")
    def _one_source(self) -> BouncesSettings:
        if self.maildir is not None and self.imap_host is not None:
            raise ValueError("set either maildir or imap_host, not both")
        if self.imap_host is not None and self.imap_username is None:
            raise ValueError("imap_host needs imap_username")
        if self.imap_username is not None and self.imap_host is None:
            raise ValueError("imap_username needs imap_host")
        return self

    @property
    def enabled(self) -> bool:
        """Whether a mailbox is configured at all."""
        return self.maildir is not None or self.imap_host is not None
