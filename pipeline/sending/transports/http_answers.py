"""What an HTTP API's answer means: the verdicts, the answer record, its error entries.

The vocabulary of :mod:`pipeline.sending.transports.http`: a provider module
maps its status codes to :class:`Verdict` in a plain dict, and hands its
answers over as :class:`HttpAnswer`, its listed errors as :class:`ProviderError`.
Kept apart so the shared sending steps read on their own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any


class Verdict(Enum):
    """What one HTTP answer means for the recipients of the request."""

    ACCEPTED = "accepted"
    REFUSED = "refused"  # this request is bad: its recipients fail
    STOP = "stop"  # the key or endpoint is refused: every request would be
    RATE_LIMITED = "rate limited"
    RETRY = "retry"  # not accepted, worth trying again shortly
    MAYBE_ACCEPTED = "maybe accepted"  # a gateway gave up: never sent again


def verdict_for(status: int, verdicts: Mapping[int, Verdict]) -> Verdict:
    """The provider's verdict for ``status``; unlisted codes go by their class."""
    if status in verdicts:
        return verdicts[status]
    if 200 <= status < 300:
        return Verdict.ACCEPTED
    if status >= 500:
        return Verdict.RETRY
    # 404, 405, 415...: a wrong API host fails every request alike.
    return Verdict.STOP


@dataclass(frozen=True)
class HttpAnswer:
    """One HTTP answer, whether the client raised it or returned it."""

    status: int
    headers: Mapping[str, str]
    body: bytes | None


@dataclass(frozen=True)
class ProviderError:
    """One error a provider's answer lists, and the request field it names, if any."""

    message: str
    field: str | None

    def __str__(self) -> str:
        return f"{self.message} ({self.field})" if self.field else self.message


def header(headers: Any, name: str) -> str | None:
    """One header of an answer as text, whatever mapping the client returned."""
    value = headers.get(name) if headers is not None else None
    return str(value) if value is not None else None
