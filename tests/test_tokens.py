"""Signed link tokens: what is issued verifies, and nothing else does."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st
from itsdangerous import Signer

from pipeline.errors import TokenError
from pipeline.tokens import TokenSigner, email_digest

SECRET = "test-secret-key"

ids = st.integers(min_value=1, max_value=2**53)
addresses = st.emails()


@given(subscriber_id=ids, email=addresses)
def test_unsubscribe_tokens_are_what_itsdangerous_signs(subscriber_id: int, email: str) -> None:
    # The issuing fast path must produce exactly itsdangerous' bytes, or links
    # already in inboxes would stop working when the code path changes.
    reference = Signer(SECRET, salt="newsletter-pipeline/unsubscribe", digest_method=hashlib.sha256)
    token = TokenSigner(SECRET).issue("unsubscribe", subscriber_id, email)
    assert token == reference.sign(f"{subscriber_id}.{email_digest(email)}").decode()


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
