"""Signed link tokens: what is issued verifies, and nothing else does."""

from __future__ import annotations

import hashlib
import string
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from itsdangerous import Signer, URLSafeTimedSerializer
from itsdangerous.encoding import base64_decode

from pipeline.errors import TokenError
from pipeline.tokens import Scope, TokenSigner, clocked_signer, legacy_email_digest

SECRET = "test-secret-key"

ids = st.integers(min_value=1, max_value=2**53)
addresses = st.emails()


@given(subscriber_id=ids, email=addresses)
def test_unsubscribe_tokens_are_what_itsdangerous_signs(subscriber_id: int, email: str) -> None:
    # The issuing fast path must produce exactly itsdangerous' bytes, or links
    # already in inboxes would stop working when the code path changes.
    reference = Signer(SECRET, salt="newsletter-pipeline/unsubscribe", digest_method=hashlib.sha256)
    signer = TokenSigner(SECRET)
    token = signer.issue("unsubscribe", subscriber_id, email)
    assert token == reference.sign(f"{subscriber_id}.{signer.email_digest(email)}").decode()


@given(subscriber_id=ids, email=addresses)
def test_an_unsubscribe_token_verifies_to_its_subscriber(subscriber_id: int, email: str) -> None:
    signer = TokenSigner(SECRET)
    claims = signer.verify("unsubscribe", signer.issue("unsubscribe", subscriber_id, email))
    assert claims.subscriber_id == subscriber_id
    assert claims.matches(email)
    assert claims.matches(email.upper())
    assert not claims.matches("someone-else@example.com")


def test_a_token_from_another_key_or_scope_or_edited_is_refused() -> None:
    signer = TokenSigner(SECRET)
    token = signer.issue("unsubscribe", 7, "ana@example.com")
    with pytest.raises(TokenError):
        TokenSigner("another-key").verify("unsubscribe", token)
    with pytest.raises(TokenError):
        signer.verify("confirm", token)
    with pytest.raises(TokenError):
        signer.verify("unsubscribe", "8" + token[1:])
    confirm = signer.issue("confirm", 7, "ana@example.com")
    with pytest.raises(TokenError):
        signer.verify("unsubscribe", confirm)


# -- canonical spelling, keyed digests, links sent before (issue 12, point 6) -------------

_BASE64URL = string.ascii_letters + string.digits + "-_"


def respellings(token: str) -> list[str]:
    """Other spellings of ``token`` whose signature decodes to the very same bytes."""
    head, _, signature = token.rpartition(".")
    same_last = [
        f"{head}.{signature[:-1]}{c}"
        for c in _BASE64URL
        if c != signature[-1] and base64_decode(signature[:-1] + c) == base64_decode(signature)
    ]
    assert same_last, "the last base64 character has unused bits to play with"
    return [*same_last, token + "=", token + "==", token + "\u00e9"]


def legacy_unsubscribe_token(subscriber_id: int, email: str, secret: str = SECRET) -> str:
    """An unsubscribe link as issued before digests were keyed (itsdangerous, SHA-256 prefix)."""
    reference = Signer(secret, salt="newsletter-pipeline/unsubscribe", digest_method=hashlib.sha256)
    unkeyed = hashlib.sha256(email.lower().encode("utf-8")).hexdigest()[:12]
    return reference.sign(f"{subscriber_id}.{unkeyed}").decode()


def legacy_confirm_token(
    subscriber_id: int, email: str, now: datetime, secret: str = SECRET
) -> str:
    """A confirm link as issued before digests were keyed."""
    serializer = URLSafeTimedSerializer(
        secret, salt="newsletter-pipeline/confirm", signer=clocked_signer(lambda: now)
    )
    unkeyed = hashlib.sha256(email.lower().encode("utf-8")).hexdigest()[:12]
    return str(serializer.dumps([subscriber_id, unkeyed]))


@pytest.mark.parametrize("scope", ["unsubscribe", "confirm"])
def test_only_the_issued_spelling_verifies(scope: Scope) -> None:
    signer = TokenSigner(SECRET)
    token = signer.issue(scope, 7, "ana@example.com")
    assert signer.verify(scope, token).subscriber_id == 7
    for other in respellings(token):
        with pytest.raises(TokenError):
            signer.verify(scope, other)


def test_the_address_digest_is_keyed_with_the_secret() -> None:
    email = "ana@example.com"
    unkeyed = hashlib.sha256(email.encode()).hexdigest()
    one, other = TokenSigner(SECRET), TokenSigner("another-secret-key")
    assert one.email_digest(email) != other.email_digest(email)
    assert one.email_digest(email) == one.email_digest("ANA@example.com")
    for scope in ("unsubscribe", "confirm"):
        claims = one.verify(scope, one.issue(scope, 7, email))
        assert claims.email_digest == one.email_digest(email)
        assert claims.email_digest not in unkeyed  # no prefix of the unkeyed SHA-256
    # The middle part of an unsubscribe link is the keyed digest, not one anyone can compute.
    middle = one.issue("unsubscribe", 7, email).split(".")[1]
    assert middle == one.email_digest(email) and middle not in unkeyed


def test_unsubscribe_links_sent_before_still_work_for_unsubscribe_only() -> None:
    signer = TokenSigner(SECRET)
    old = legacy_unsubscribe_token(7, "ana@example.com")
    claims = signer.verify("unsubscribe", old)
    assert claims.subscriber_id == 7
    assert claims.matches("Ana@Example.com")
    assert not claims.matches("someone-else@example.com")
    assert claims.email_digest == legacy_email_digest("ana@example.com")
    for other in respellings(old):
        with pytest.raises(TokenError):
            signer.verify("unsubscribe", other)
    with pytest.raises(TokenError):
        TokenSigner("another-key").verify("unsubscribe", old)


def test_confirm_links_with_the_unkeyed_digest_are_refused() -> None:
    now = datetime(2026, 12, 1, 9, tzinfo=UTC)
    signer = TokenSigner(SECRET, clock=lambda: now)
    with pytest.raises(TokenError):
        signer.verify("confirm", legacy_confirm_token(7, "ana@example.com", now), max_age=3600)
    fresh = signer.issue("confirm", 7, "ana@example.com")
    assert signer.verify("confirm", fresh, max_age=3600).matches("ana@example.com")
