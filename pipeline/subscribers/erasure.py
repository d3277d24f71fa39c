"""Keyed digests of erased addresses (``subscribers forget``).

After an erasure the database keeps no address, only
``HMAC-SHA256(secret key, address)``: enough to recognise the address when an
old CSV, ``subscribers add`` or a late SendGrid event brings it back, useless
to anyone holding the database without the key (an unkeyed hash of an address
is reversed by hashing a list of likely addresses).

The digest depends on the secret key: a folder whose ``NEWSLETTER_SECRET_KEY``
(or generated ``.newsletter-secret``) changes no longer recognises the
addresses erased before.
"""

from __future__ import annotations

import hashlib
import hmac

# Domain separation: the same key also signs unsubscribe and confirm tokens.
_PURPOSE = b"newsletter-pipeline/erased-address\0"

#: Length of a digest (hex SHA-256), the width of ``erased_addresses.digest``.
DIGEST_LENGTH = 64


def erasure_digest(secret_key: str, address: str) -> str:
    """The digest kept for a normalized ``address`` (hex HMAC-SHA256)."""
    message = _PURPOSE + address.encode("utf-8")
    # hmac.digest: the same HMAC in one C call (an import digests every address).
    return hmac.digest(secret_key.encode("utf-8"), message, hashlib.sha256).hex()


def erased_reason() -> str:
    """Why an erased address is refused, for CLI lines and errors."""
    return (
        "this address was erased at the person's request (subscribers forget); "
        "only the person can subscribe it again, through the sign-up form and its "
        "confirmation email"
    )
