"""Addresses: stored lower-case and in ASCII, malformed ones refused, and the ASCII fast
path never accepting what email-validator would refuse or change."""

from __future__ import annotations

import pytest
from email_validator import EmailNotValidError, validate_email
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.errors import InvalidAddressError
from pipeline.subscribers import normalize_email
from pipeline.subscribers.addresses import fast_normalize

ATOM_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+/=?^_`{|}~-"
LABEL_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-"

atoms = st.text(ATOM_CHARS, min_size=1, max_size=20)
labels = st.text(LABEL_CHARS, min_size=1, max_size=20)
tlds = st.sampled_from(["com", "au", "org", "test", "local", "xn--p1ai", "COM", "c0m", "io"])
addresses = st.builds(
    lambda local, domain, tld: f"{'.'.join(local)}@{'.'.join([*domain, tld])}",
    st.lists(atoms, min_size=1, max_size=3),
    st.lists(labels, min_size=1, max_size=3),
    tlds,
)


def _library(address: str) -> str | None:
    try:
        result = validate_email(address, check_deliverability=False)
    except EmailNotValidError:
        return None
    return (result.ascii_email or result.normalized).lower()


@settings(max_examples=3000)
@given(addresses)
def test_whatever_the_fast_path_accepts_the_library_accepts_the_same(address: str) -> None:
    fast = fast_normalize(address)
    if fast is not None:
        assert _library(address) == fast


@given(st.text(max_size=60))
def test_arbitrary_text_never_slips_through(text: str) -> None:
    fast = fast_normalize(text)
    if fast is not None:
        assert _library(text) == fast


@pytest.mark.parametrize(
    "address",
    ["Jane.Doe+news@Clinic.COM.au", "o'brien@example.com", "x_y@sub.example.org"],
)
def test_common_addresses_take_the_fast_path(address: str) -> None:
    assert fast_normalize(address) == address.lower()


@pytest.mark.parametrize(
    "address",
    ["a@b.test", "a@localhost", "a@ab--c.com", "a@xn--zz.com", "jöe@example.com", "a..b@x.com"],
)
def test_anything_unusual_is_left_to_email_validator(address: str) -> None:
    assert fast_normalize(address) is None


def test_addresses_are_stored_lower_case_and_trimmed() -> None:
    assert normalize_email("  Ann.Lee@Example.COM ") == "ann.lee@example.com"


@pytest.mark.parametrize("raw", ["", "ann", "ann@", "ann@example", "ann lee@example.com"])
def test_malformed_addresses_are_refused_with_a_reason(raw: str) -> None:
    with pytest.raises(InvalidAddressError, match="invalid email address"):
        normalize_email(raw)


def test_international_domain_is_stored_in_ascii_form() -> None:
    assert normalize_email("Ann@Exämple.com") == "ann@xn--exmple-cua.com"
