"""The one check every address passes where it enters: :func:`normalize_address`.

The web form, CSV import, ``subscribers add``, test sends and the SendGrid
webhook all call it (``subscribers.normalize_email`` is this function).
email-validator (no DNS) is the authority on form; on top of it, an address
holding an RFC 2047 encoded-word (``=?``) or any control character is refused:
``=?utf-8?q?a=0d=0aBcc=3a...?=@example.com`` is valid RFC 5322, but Python's
email package decodes it again when it writes the ``To`` header, which put raw
CR/LF (a header of the sender's choosing) or a second recipient into the email.

email-validator costs ~80 µs an address, which caps a million-row import at
~12,000 rows/s. Nearly every real address is plain ASCII
(``jane.doe+news@clinic.com.au``), so :func:`fast_normalize` accepts exactly
such addresses with one regular expression, under rules *stricter* than
email-validator's, and returns ``None`` for everything else so the caller asks
email-validator. ``tests/subscribers/test_addresses.py`` checks, property by property, that
whatever it accepts email-validator accepts too, with the same result.
"""

from __future__ import annotations

import re

from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email

from pipeline.errors import InvalidAddressError

_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_PLAIN = re.compile(rf"({_ATOM}(?:\.{_ATOM})*)@((?:{_LABEL}\.)+[A-Za-z]{{2,63}})")
_SPECIAL = frozenset(SPECIAL_USE_DOMAIN_NAMES)
_SPECIAL_SUFFIXES = tuple("." + name for name in SPECIAL_USE_DOMAIN_NAMES)

#: How an RFC 2047 encoded-word starts; never part of an address we accept.
ENCODED_WORD = "=?"


def normalize_address(raw: str) -> str:
    """The stored form of an address: validated in form (no DNS) and lower-cased whole.

    Surrounding whitespace is ignored. Raises :class:`InvalidAddressError`
    whose message quotes the address and says why it was refused.
    """
    text = raw.strip()
    fast = fast_normalize(text)
    if fast is not None:
        return fast
    if ENCODED_WORD in text:
        raise InvalidAddressError(
            f"invalid email address {text!r}: it contains '=?', which mail software"
            " decodes as an RFC 2047 encoded-word (refused: it could forge email headers)"
        )
    if not text.isprintable():
        # email-validator refuses these too; said here so no header can ever get one.
        raise InvalidAddressError(
            f"invalid email address {text!r}: it contains a line break,"
            " a control character or an invisible one"
        )
    try:
        validated = validate_email(text, check_deliverability=False)
    except EmailNotValidError as error:
        raise InvalidAddressError(f"invalid email address {text!r}: {error}") from error
    address = (validated.ascii_email or validated.normalized).lower()
    if ENCODED_WORD in address or not address.isprintable():  # after Unicode normalization
        raise InvalidAddressError(f"invalid email address {text!r}: unsafe characters")
    return address


def fast_normalize(raw: str) -> str | None:
    """The lower-cased address when it is plainly valid ASCII; ``None`` to defer."""
    match = _PLAIN.fullmatch(raw)
    if match is None or ENCODED_WORD in raw:
        return None
    local, domain = match.groups()
    if len(local) > 64 or len(raw) > 254 or len(domain) > 253:
        return None
    lowered = domain.lower()
    # Punycode and "ab--" labels need IDNA rules; special-use names are refused.
    # (Tested in this order because it is cheapest for the common address.)
    if "--" in lowered and any(label[2:4] == "--" for label in lowered.split(".")):
        return None
    if lowered.rpartition(".")[2] in _SPECIAL or lowered.endswith(_SPECIAL_SUFFIXES):
        return None
    return raw.lower()
