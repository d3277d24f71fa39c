"""Signed, scoped tokens for links in emails (itsdangerous).

A token names a subscriber by id *and* a short digest of their address, so it
is not guessable from an id and stops working if the id is ever reused for
someone else. Each scope has its own salt: an unsubscribe token cannot confirm
a subscription and a confirm token cannot unsubscribe.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from .errors import TokenError

Scope = Literal["unsubscribe", "confirm"]


@dataclass(frozen=True)
class TokenClaims:
    """What a verified token says."""

    subscriber_id: int
    email_digest: str

    def matches(self, email: str) -> bool:
        """Whether the token was issued for this address."""
        return email_digest(email) == self.email_digest


def email_digest(email: str) -> str:
    """A short, stable digest of an address (not reversible to the address)."""
    return hashlib.sha256(email.lower().encode("utf-8")).hexdigest()[:12]


class TokenSigner:
    """Issue and verify tokens for one secret key."""

    def __init__(self, secret_key: str) -> None:
        self._secret = secret_key

    def _serializer(self, scope: Scope) -> URLSafeTimedSerializer:
        return URLSafeTimedSerializer(self._secret, salt=f"newsletter-pipeline/{scope}")

    def issue(self, scope: Scope, subscriber_id: int, email: str) -> str:
        """A URL-safe token for ``scope``."""
        return str(self._serializer(scope).dumps([subscriber_id, email_digest(email)]))

    def verify(self, scope: Scope, token: str, *, max_age: int | None = None) -> TokenClaims:
        """Check signature, scope and age; raise :class:`TokenError` on any failure."""
        try:
            payload = self._serializer(scope).loads(token, max_age=max_age)
        except SignatureExpired:
            raise TokenError("this link has expired") from None
        except BadSignature:
            raise TokenError("this link is not valid") from None
        if (
            not isinstance(payload, list)
            or len(payload) != 2
            or not isinstance(payload[0], int)
            or not isinstance(payload[1], str)
        ):
            raise TokenError("this link is not valid")
        return TokenClaims(subscriber_id=payload[0], email_digest=payload[1])
