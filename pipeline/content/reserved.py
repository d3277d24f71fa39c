"""Slugs the pipeline keeps for itself, so no article can take them.

The welcome email is a long-lived campaign named ``welcome`` (see
:mod:`pipeline.store.welcome`): campaigns are named by slug, so an article
called ``welcome`` would share its ledger and be "already sent" to everyone
who was welcomed. ``check`` refuses such an article instead.
"""

from __future__ import annotations

from typing import Final

#: The welcome email's campaign slug.
WELCOME_SLUG: Final = "welcome"

#: Every slug an article may not use, with why.
RESERVED_SLUGS: Final = {WELCOME_SLUG: "the welcome email's campaign"}


def reserved_reason(slug: str) -> str | None:
    """Why ``slug`` cannot be an article's slug, or None when it can."""
    why = RESERVED_SLUGS.get(slug)
    if why is None:
        return None
    return f"slug {slug!r} is reserved for {why}: choose another slug (front matter `slug: ...`)"
