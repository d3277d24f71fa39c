"""What an SMTP reply means: the outcome of one try, and "this mailbox does not exist".

The transport (:mod:`pipeline.sending.transports.smtp`) turns each try into an
:class:`Attempt`; :func:`mailbox_does_not_exist` decides the hard bounces that
mark a subscriber ``bounced``. Plain functions of the reply, testable alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pipeline.sending.transports.base import FailureKind, Outcome


@dataclass(frozen=True)
class Attempt:
    """What one try at handing a message over came to."""

    #: SENT, FAILED or UNCERTAIN end the message; None means it may be retried.
    outcome: Outcome | None
    error: str | None = None
    #: The server refuses everything: stop (or defer the rest of the batch).
    stop: bool = False
    #: The trouble is the server or connection, not this recipient: once retries
    #: are used up, the rest of the batch defers without waiting again.
    server_wide: bool = False
    #: A reused connection turned out dead: reconnect at once, no retry counted.
    free: bool = False
    #: Why a FAILED outcome failed, and whether the mailbox does not exist.
    kind: FailureKind | None = None
    address_gone: bool = False


RECIPIENT_REFUSED = "recipient refused"
#: RFC 3463 statuses for "no such mailbox": bad destination mailbox (5.1.1), no
#: mail accepted by the domain (5.1.10, RFC 7505 null MX) and mailbox disabled (5.2.1).
_GONE_STATUS = re.compile(r"^\s*5\.(?:1\.1|1\.10|2\.1)(?![.\d])")
#: What a plain 550 says when it means the same without an enhanced status.
_GONE_WORDS = ("user unknown", "unknown user", "no such user", "no such mailbox")


def mailbox_does_not_exist(code: int, reply: bytes | str) -> bool:
    """Whether an RCPT refusal says the mailbox does not exist (a hard bounce).

    Only then does the subscriber become ``bounced``; any other 5xx (a policy
    block, a full mailbox) fails the row but leaves the person on the list.
    """
    if not 500 <= code < 600:
        return False
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
    if _GONE_STATUS.match(text):
        return True
    return code == 550 and any(words in text.lower() for words in _GONE_WORDS)


def describe(exc: BaseException) -> str:
    """A short description of a connection-level error."""
    if isinstance(exc, TimeoutError):
        return "timed out"
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
