"""The sign-up form's rules that need no database: the first name it accepts.

Double opt-in itself (reserving a confirmation email, confirming, the consent
record) reads and writes subscriber rows, so it lives in
:mod:`pipeline.store.signups`; the routes are in :mod:`pipeline.web.subscribe`.
"""

from __future__ import annotations

#: Longest first name the form accepts (the column holds 200).
MAX_FIRST_NAME = 100


def clean_first_name(raw: str | None) -> str | None:
    """The form's first name: control characters dropped, spaces collapsed, None if empty."""
    text = "".join(c for c in (raw or "") if c.isprintable())
    text = " ".join(text.split())
    return text or None
