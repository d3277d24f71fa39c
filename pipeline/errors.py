"""One exception root for the whole pipeline.

Every error a user can cause derives from :class:`PipelineError` and also from
the built-in it resembles, so callers may catch either. The CLI prints
``str(error)`` as one line; nothing here ever formats a secret into a message.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


class PipelineError(Exception):
    """Root of every error the pipeline raises on purpose."""


class ConfigError(PipelineError, ValueError):
    """Settings are missing or invalid (names the file and field)."""


class ArticleError(PipelineError, ValueError):
    """An article file cannot be used; carries every problem found in it."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class NotFoundError(PipelineError, LookupError):
    """A named thing (article slug, subscriber, campaign) does not exist."""


class InvalidAddressError(PipelineError, ValueError):
    """An email address is not deliverable in form."""


class UnsafeHeaderError(PipelineError, ValueError):
    """An outgoing email header would carry a line break or say something else than meant.

    Raised by the message builder whatever the input, so one hostile value
    (an address, a title) fails that one message instead of reaching a relay.
    """


class TemplateError(PipelineError, ValueError):
    """An email template is missing or does not render."""


class TransportError(PipelineError, OSError):
    """A transport could not hand a message over."""


class TokenError(PipelineError, ValueError):
    """A signed token is malformed, tampered with, expired or of another scope."""


@dataclass(frozen=True)
class Problem:
    """One problem in one file, reported as ``path:line: message``."""

    path: Path
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"
