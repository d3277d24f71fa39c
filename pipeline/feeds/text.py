"""Small value helpers for feed entries: one-line text, absolute http(s) URLs, hashes.

A feed's titles, names and links arrive in every shape; these turn them into
what front matter stores (one line, no markup, a web address or nothing).
"""

from __future__ import annotations

import hashlib
import html
import json
import unicodedata
from urllib.parse import urljoin, urlsplit

from pipeline.content.sanitize import text_only


def _one_line(text: str) -> str:
    # As the front matter stores text: control characters and runs of space become one space.
    cleaned = "".join(" " if unicodedata.category(ch) in {"Cc", "Zl", "Zp"} else ch for ch in text)
    return " ".join(cleaned.split())


def _text_of(value: object) -> str:
    """Plain one-line text of a feed value (a title, summary or name).

    Tags are stripped whatever type the feed declared: plain-text titles with
    markup typed into them are common, and a subject line shows no markup.
    """
    if not isinstance(value, str) or not value:
        return ""
    return _one_line(html.unescape(text_only(value)))


def _shorten(text: str, length: int) -> str:
    if len(text) <= length:
        return text
    return text[: length + 1].rsplit(" ", 1)[0].rstrip(" ,.;:-") + "…"


def _absolute_http(value: object, base: str | None) -> str | None:
    """``value`` as an absolute http(s) URL (resolved against ``base``), or None."""
    if not isinstance(value, str):
        return None
    # A space in a file name is common on blogs and harmless once encoded.
    url = value.strip().replace(" ", "%20")
    if not url:
        return None
    try:
        if base and not urlsplit(url).scheme:
            url = urljoin(base, url)
        parts = urlsplit(url)
        # front matter (like every browser) wants the scheme in lowercase
        url = parts._replace(scheme=parts.scheme.lower()).geturl()
    except ValueError:
        return None
    unsafe = any(ch.isspace() or unicodedata.category(ch) in {"Cc", "Cs"} for ch in url)
    if parts.scheme.lower() not in {"http", "https"} or not parts.netloc or unsafe:
        return None
    return url


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def _hash(values: list[str | None]) -> str:
    return _digest(json.dumps(values, ensure_ascii=True))
