"""Dashboard accounts: roles, password hashes and the first-run setup link.

Shared by ``newsletter users`` (pipeline/cli/users.py), ``demo`` (which prints
the setup link while no account exists) and the dashboard (pipeline/web/admin/).
The rows themselves live in :mod:`pipeline.store.users`.

Passwords are hashed with Argon2id (argon2-cffi's defaults, RFC 9106's
low-memory choice); only the hash is stored. The setup link is signed with the
folder's secret key, expires after an hour and works once: it can only create
the first owner, and its nonce is recorded when it does.
"""

from __future__ import annotations

import functools
import secrets
from collections.abc import Callable
from datetime import datetime
from enum import StrEnum

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from pipeline.errors import PipelineError, TokenError
from pipeline.subscribers import normalize_email
from pipeline.tokens import clocked_signer

#: Shortest password accepted (NIST SP 800-63B asks for at least 8; a clinic's list is worth more).
MIN_PASSWORD = 10
#: Longest password accepted: hashing cost must not be a lever for whoever posts the form.
MAX_PASSWORD = 1024
#: How long a setup link works.
SETUP_MAX_AGE = 3600


class Role(StrEnum):
    """What an account may do. A writer writes, previews and queues articles;
    an owner also sends, schedules, pauses and sees and changes subscribers."""

    WRITER = "writer"
    OWNER = "owner"


class AccountError(PipelineError, ValueError):
    """An account cannot be created as asked (address, password, role)."""


_hasher = PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    """Verified against when no account has the address, so a wrong address and a
    wrong password take the same time. Made on first use, not at import: an
    Argon2 hash costs ~0.1 s, and every ``newsletter`` command imports this module."""
    return _hasher.hash(secrets.token_urlsafe(16))


def check_password(password: str) -> None:
    """Raise :class:`AccountError` when a new password is too short or too long."""
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"the password must be at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise AccountError(f"the password must be at most {MAX_PASSWORD} characters")


def account_email(raw: str) -> str:
    """The stored form of an account's address; :class:`AccountError` when it is not one."""
    try:
        return normalize_email(raw)
    except PipelineError as exc:
        raise AccountError(f"{raw.strip()!r} is not an email address: {exc}") from None


def parse_role(raw: str) -> Role:
    """``owner`` or ``writer``; :class:`AccountError` for anything else."""
    try:
        return Role(raw.strip().lower())
    except ValueError:
        raise AccountError(f"role must be 'owner' or 'writer', not {raw!r}") from None


def hash_password(password: str) -> str:
    """The Argon2id hash to store (checks the length first)."""
    check_password(password)
    return _hasher.hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    """Whether ``password`` matches; with no hash (no such account) it takes the same time."""
    if len(password) > MAX_PASSWORD:
        return False
    try:
        return _hasher.verify(stored_hash or _dummy_hash(), password) and stored_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    """Whether the hash was made with weaker parameters than today's."""
    return _hasher.check_needs_rehash(stored_hash)


class SetupLinks:
    """Issue and check first-run setup tokens (a random nonce, signed and timestamped)."""

    def __init__(self, secret_key: str, clock: Callable[[], datetime]) -> None:
        self._serializer = URLSafeTimedSerializer(
            secret_key, salt="newsletter-pipeline/admin-setup", signer=clocked_signer(clock)
        )

    def issue(self) -> str:
        """A new token for the setup page's URL."""
        return str(self._serializer.dumps(secrets.token_urlsafe(24)))

    def verify(self, token: str) -> str:
        """The token's nonce; :class:`TokenError` when forged or older than an hour."""
        try:
            nonce = self._serializer.loads(token, max_age=SETUP_MAX_AGE)
        except SignatureExpired:
            raise TokenError("this setup link has expired") from None
        except BadSignature:
            raise TokenError("this setup link is not valid") from None
        if not isinstance(nonce, str) or not 16 <= len(nonce) <= 64:
            raise TokenError("this setup link is not valid")
        return nonce
