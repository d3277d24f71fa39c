"""Signed, scoped tokens for links in emails (itsdangerous).

A token names a subscriber by id *and* a short digest of their address, so it
is not guessable from an id and stops working if the id is ever reused for
someone else. The digest is keyed (HMAC-SHA256 with a key derived from the
secret key, first 16 hex digits): someone who sees a link cannot test guessed
addresses against it offline. Each scope has its own salt: an unsubscribe
token cannot confirm a subscription and a confirm token cannot unsubscribe.

Only the exact text a token was issued as verifies: itsdangerous alone also
accepts other spellings of the same signature bytes (different unused low
bits in the last base64 character, an added ``=``, stray characters), which
:func:`_canonical` refuses.

Unsubscribe links sent before the digest was keyed carry an unkeyed SHA-256
prefix of the address (12 hex digits); they never expire and sit in old
newsletters, so that form is still accepted, for unsubscribe only. A confirm
(or any other) token must carry the keyed digest.

Timestamps come from an injectable clock, so expiry is testable without
sleeping; a verified token also says when it was issued (a confirm link is
only good for the latest confirmation email).
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal

from itsdangerous import (
    BadSignature,
    SignatureExpired,
    Signer,
    TimestampSigner,
    URLSafeTimedSerializer,
)
from itsdangerous.encoding import base64_decode, base64_encode

from pipeline.errors import TokenError

if TYPE_CHECKING:
    from hashlib import _Hash

Scope = Literal["unsubscribe", "confirm"]

#: Hex digits of the keyed address digest in every token issued now.
DIGEST_LENGTH = 16
#: Hex digits of the unkeyed digest in unsubscribe links issued before.
LEGACY_DIGEST_LENGTH = 12
#: Standard base64 to its URL-safe alphabet (RFC 4648 section 5).
_URLSAFE = bytes.maketrans(b"+/", b"-_")
_HEX = frozenset("0123456789abcdef")


@dataclass(frozen=True)
class TokenClaims:
    """What a verified token says."""

    subscriber_id: int
    email_digest: str
    #: When the token was signed (whole seconds, UTC).
    issued_at: datetime | None = None
    #: How this token's digest is computed from an address (keyed, or the legacy form).
    digest_of: Callable[[str], str] = field(kw_only=True, repr=False, compare=False)

    def matches(self, email: str) -> bool:
        """Whether the token was issued for this address."""
        return hmac.compare_digest(self.digest_of(email), self.email_digest)


def legacy_email_digest(email: str) -> str:
    """The unkeyed digest older unsubscribe links carry (anyone can compute it)."""
    return hashlib.sha256(email.lower().encode("utf-8")).hexdigest()[:LEGACY_DIGEST_LENGTH]


def _is_digest(text: str, length: int) -> bool:
    return len(text) == length and _HEX.issuperset(text)


def _canonical(token: str) -> bool:
    """Whether the signature part of a verified token is spelled as it was issued."""
    signature = token.rpartition(".")[2]
    # Decoding ignores what cannot be base64 and the unused low bits; encoding
    # again gives the one spelling issued, so any other spelling differs here.
    return base64_encode(base64_decode(signature)).decode("ascii") == signature


def _hmac_states(key: bytes) -> tuple[_Hash, _Hash]:
    """SHA-256 states keyed for HMAC (RFC 2104), as the ``hmac`` module builds them.

    ``HMAC(K, m) = H((K ^ opad) || H((K ^ ipad) || m))``: the two keyed states
    are hashed once here; a token copies them (C-level copies of hashlib
    objects) instead of going through ``hmac.HMAC``'s Python methods.
    """
    block = hashlib.sha256().block_size
    if len(key) > block:
        key = hashlib.sha256(key).digest()
    key = key.ljust(block, b"\0")
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
    outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))
    return inner, outer


class _PreparedHmac:
    """HMAC-SHA256 under one key, from states keyed once and copied per message."""

    def __init__(self, key: bytes) -> None:
        self._inner, self._outer = _hmac_states(key)

    def digest(self, message: bytes) -> bytes:
        inner = self._inner.copy()
        inner.update(message)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()


def clocked_signer(clock: Callable[[], datetime]) -> type[TimestampSigner]:
    """An itsdangerous signer class that reads time from ``clock`` instead of ``time.time``."""

    class _ClockedSigner(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(clock().timestamp())

    return _ClockedSigner


class TokenSigner:
    """Issue and verify tokens for one secret key.

    ``clock`` (default: the system clock) stamps new tokens and measures
    ``max_age``; tests pass their own.
    """

    def __init__(self, secret_key: str, *, clock: Callable[[], datetime] | None = None) -> None:
        self._secret = secret_key
        self._signer = clocked_signer(clock or (lambda: datetime.now(UTC)))
        self._serializers: dict[Scope, URLSafeTimedSerializer] = {}
        # Unsubscribe links never expire, so they carry no timestamp: a plain
        # signature over "id.digest", ten times cheaper than a timed
        # serializer, which matters with one link per recipient per campaign.
        self._unsubscribe = Signer(
            secret_key, salt="newsletter-pipeline/unsubscribe", digest_method=hashlib.sha256
        )
        # Issuing computes the same HMAC-SHA256 as ``Signer.sign`` (a property
        # test holds the bytes equal; verification still goes through
        # itsdangerous) from hash states keyed once, copied per token: one link
        # per recipient made this a tenth of a send's time.
        self._signature = _PreparedHmac(self._unsubscribe.derive_key())
        # The address digest's key: derived from the secret under its own salt.
        self._address_key = _PreparedHmac(
            Signer(
                secret_key, salt="newsletter-pipeline/address-digest", digest_method=hashlib.sha256
            ).derive_key()
        )

    def email_digest(self, email: str) -> str:
        """The keyed digest of an address a token carries (not reversible, not guessable)."""
        return self._address_key.digest(email.lower().encode("utf-8")).hex()[:DIGEST_LENGTH]

    def _serializer(self, scope: Scope) -> URLSafeTimedSerializer:
        # Built once per scope: issuing a token per recipient is on the hot path.
        if scope not in self._serializers:
            self._serializers[scope] = URLSafeTimedSerializer(
                self._secret, salt=f"newsletter-pipeline/{scope}", signer=self._signer
            )
        return self._serializers[scope]

    def issue(self, scope: Scope, subscriber_id: int, email: str) -> str:
        """A URL-safe token for ``scope``."""
        if scope == "unsubscribe":
            return self.unsubscribe_token(subscriber_id, email)
        return str(self._serializer(scope).dumps([subscriber_id, self.email_digest(email)]))

    def unsubscribe_token(self, subscriber_id: int, email: str) -> str:
        """``issue("unsubscribe", ...)``: one per recipient per campaign, so written out flat."""
        digest = self._address_key.digest(email.lower().encode("utf-8")).hex()[:DIGEST_LENGTH]
        value = f"{subscriber_id}.{digest}"
        raw = self._signature.digest(value.encode())
        # base64.urlsafe_b64encode, without its two layers of Python calls.
        signature = binascii.b2a_base64(raw, newline=False).translate(_URLSAFE).rstrip(b"=")
        return f"{value}.{signature.decode()}"

    def verify(self, scope: Scope, token: str, *, max_age: int | None = None) -> TokenClaims:
        """Check signature, scope and age; raise :class:`TokenError` on any failure."""
        if scope == "unsubscribe":
            return self._verify_unsubscribe(token)
        try:
            payload, issued_at = self._serializer(scope).loads(
                token, max_age=max_age, return_timestamp=True
            )
        except SignatureExpired:
            raise TokenError("this link has expired") from None
        except BadSignature:
            raise TokenError("this link is not valid") from None
        if (
            not _canonical(token)
            or not isinstance(payload, list)
            or len(payload) != 2
            or not isinstance(payload[0], int)
            or not isinstance(payload[1], str)
            # Only the keyed digest: the legacy form is accepted for unsubscribe alone.
            or not _is_digest(payload[1], DIGEST_LENGTH)
        ):
            raise TokenError("this link is not valid")
        return TokenClaims(
            subscriber_id=payload[0],
            email_digest=payload[1],
            issued_at=issued_at,
            digest_of=self.email_digest,
        )

    def _verify_unsubscribe(self, token: str) -> TokenClaims:
        try:
            value = self._unsubscribe.unsign(token).decode()
        except (BadSignature, UnicodeError):
            raise TokenError("this link is not valid") from None
        if not _canonical(token):
            raise TokenError("this link is not valid")
        subscriber_id, _, digest = value.partition(".")
        if not subscriber_id.isascii() or not subscriber_id.isdigit():
            raise TokenError("this link is not valid")
        if _is_digest(digest, DIGEST_LENGTH):
            digest_of = self.email_digest
        elif _is_digest(digest, LEGACY_DIGEST_LENGTH):
            digest_of = legacy_email_digest  # a link sent before digests were keyed
        else:
            raise TokenError("this link is not valid")
        return TokenClaims(
            subscriber_id=int(subscriber_id), email_digest=digest, digest_of=digest_of
        )
