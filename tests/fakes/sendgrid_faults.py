"""The answers a test scripts for the fake SendGrid (sendgrid_server.py), one per request.

``SendGridServer.script(...)`` takes these in order (``None``: answer normally):
a canned :class:`Reply` (429, 5xx, 400, 401...), a :class:`Hang` or a :class:`Drop`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from tests.fakes.sendgrid_validation import api_error


@dataclass(frozen=True)
class Reply:
    """A canned HTTP answer for one request (the body is not looked at)."""

    status: int
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()

    @classmethod
    def error(cls, status: int, message: str = "scripted error", field: str | None = None) -> Reply:
        """A SendGrid-style JSON error answer."""
        payload = json.dumps({"errors": [api_error(message, field)]}).encode()
        return cls(status, payload, (("Content-Type", "application/json"),))

    @classmethod
    def rate_limited(cls, reset: float | None = None) -> Reply:
        """A 429, with ``X-RateLimit-Reset`` (epoch seconds) when ``reset`` is given."""
        reply = cls.error(429, "too many requests")
        if reset is None:
            return reply
        return Reply(429, reply.body, (*reply.headers, ("X-RateLimit-Reset", str(int(reset)))))


@dataclass(frozen=True)
class Hang:
    """Read the body, then never answer until :meth:`SendGridServer.release` (or timeout).

    With ``accept`` the request counts as delivered (validated as usual) before
    the silence: SendGrid took the mail, the client never heard. With
    ``answer_on_release`` a release sends the normal answer instead of closing:
    a slow request rather than a lost one.
    """

    accept: bool = False
    answer_on_release: bool = False


@dataclass(frozen=True)
class Drop:
    """Read the body, then close the connection without answering (``accept`` as for Hang)."""

    accept: bool = False


Behaviour = Reply | Hang | Drop
