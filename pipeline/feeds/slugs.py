"""The slug an imported entry asks for: from its link's last path segment, else its title.

The importer makes it unique among the articles folder's files (``-2``, ``-3``...).
"""

from __future__ import annotations

import re
import unicodedata
from typing import Final
from urllib.parse import unquote, urlsplit

SLUG_LENGTH: Final = 80


def slugify(text: str) -> str:
    """ASCII lowercase words joined by hyphens (``Massage & Mind`` -> ``massage-and-mind``)."""
    text = text.replace("&", " and ")
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    if len(slug) > SLUG_LENGTH:
        slug = slug[: SLUG_LENGTH + 1].rsplit("-", 1)[0]
    return slug


def slug_for(link: str, title: str) -> str:
    """The slug an entry asks for: its link's last path segment, else its title."""
    segments = [segment for segment in urlsplit(link).path.split("/") if segment]
    if segments:
        last = re.sub(r"\.(html?|php|aspx?)$", "", unquote(segments[-1]), flags=re.IGNORECASE)
        from_link = slugify(last)
        # "?p=123"-style and date-only paths say nothing; the title does better
        if from_link and not from_link.replace("-", "").isdigit() and from_link != "index":
            return from_link
    return slugify(title) or "article"
