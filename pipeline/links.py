"""Every URL the newsletter hands out (in emails, the archive, the feed, the CLI), built
here and nowhere else.

The web app's route declarations (``@router.get("/archive/{slug}")``) are the other
half of each format; tests/test_links.py checks that the email, the archive page and
the confirm email carry exactly what these functions return. ``base_url`` is
``[web] base_url`` (config strips its trailing slash; these strip it again so a
caller's own base cannot double it). Links are absolute and never built from a
request's Host header: an email must point where the clinic says, not where a
request came from.
"""

from __future__ import annotations


def _base(base_url: str) -> str:
    return base_url.rstrip("/")


def archive_index_url(base_url: str) -> str:
    """The list of every issue sent: ``{base_url}/archive``."""
    return f"{_base(base_url)}/archive"


def archive_feed_url(base_url: str) -> str:
    """The archive's RSS feed: ``{base_url}/archive/feed.xml``."""
    return f"{archive_index_url(base_url)}/feed.xml"


def archive_url(base_url: str, slug: str) -> str:
    """One issue in the web archive: ``{base_url}/archive/{slug}``."""
    return f"{archive_index_url(base_url)}/{slug}"


def unsubscribe_page_url(base_url: str) -> str:
    """The unsubscribe page without a token (the archive's public copy links here)."""
    return f"{_base(base_url)}/unsubscribe"


def unsubscribe_url(base_url: str, token: str) -> str:
    """A subscriber's one-click unsubscribe link: ``{base_url}/unsubscribe/{token}``."""
    return f"{unsubscribe_page_url(base_url)}/{token}"


def confirm_url(base_url: str, token: str) -> str:
    """The double opt-in link in a confirm email: ``{base_url}/confirm/{token}``."""
    return f"{_base(base_url)}/confirm/{token}"


def neighbour_url(base_url: str, slug: str, canonical_url: str | None) -> str:
    """Where an email's previous/next link points: the article's ``canonical_url`` (the
    clinic's own blog post), else its page in the web archive."""
    return canonical_url or archive_url(base_url, slug)


def hold_url(base_url: str, token: str) -> str:
    """The heads-up's "Hold this send" page: ``{base_url}/hold/{token}``."""
    return f"{_base(base_url)}/hold/{token}"


def hold_preview_url(base_url: str, token: str) -> str:
    """The heads-up's preview of the issue about to go: ``{base_url}/hold/{token}/preview``."""
    return f"{hold_url(base_url, token)}/preview"


def admin_setup_url(base_url: str, token: str) -> str:
    """The first-run link that creates the dashboard's owner: ``{base_url}/admin/setup/{token}``."""
    return f"{_base(base_url)}/admin/setup/{token}"
