"""A fetched document -> :class:`ParsedFeed`: feedparser, then each entry read on its own.

Each entry becomes a :class:`FeedItem` (title, absolute link, author, summary,
hero image, date, its key and content hash, and a sanitized, converted body) or
one line saying why it cannot be used; one bad entry never stops the others.
"""

from __future__ import annotations

import calendar
import html
import io
import re
from datetime import UTC, datetime
from typing import Any, Final

import feedparser

from pipeline.feeds.convert import html_to_body, sanitize_html
from pipeline.feeds.fetch import Fetched
from pipeline.feeds.records import FeedError, FeedItem, ParsedFeed
from pipeline.feeds.text import _absolute_http, _digest, _hash, _one_line, _shorten, _text_of

#: A guid longer than this is stored as its hash (keys are indexed database values).
MAX_KEY_LENGTH: Final = 500
SUMMARY_LENGTH: Final = 200

_HTML_TYPES: Final = frozenset({"text/html", "application/xhtml+xml"})
# feedparser flags these as bozo, but they say nothing about the document itself:
# a feed served as text/plain, or declared in one encoding and readable in another.
_HARMLESS_BOZO: Final = (
    feedparser.NonXMLContentType,
    feedparser.CharacterEncodingOverride,
)


def parse_feed(document: Fetched, source: str) -> ParsedFeed:
    """Parse a document with feedparser and read every entry; raise if it is no feed.

    A document that is not well-formed is still read as far as feedparser's
    lenient parser gets, with one line saying so.
    """
    # Bytes in a BytesIO: feedparser would open a str that looks like a path or URL.
    # resolve_relative_uris=False: feedparser would resolve links inside the content
    # against the feed's own address, wrong whenever the feed is served from another
    # host (a feed proxy, a CDN); each entry resolves them against its own page.
    parsed: Any = feedparser.parse(
        io.BytesIO(document.body),
        response_headers=dict(document.headers),
        resolve_relative_uris=False,
    )
    problems: list[str] = []
    error = parsed.get("bozo_exception") if parsed.get("bozo") else None
    if not parsed.get("version") and not parsed.entries:
        raise FeedError(f"{source}: {_why_not_a_feed(document, error)}; nothing imported")
    if error is not None and not isinstance(error, _HARMLESS_BOZO):
        problems.append(
            f"{source}: the feed is not well-formed XML ({_xml_error(error)});"
            " imported what could be read"
        )
    feed_link = _absolute_http(parsed.feed.get("link"), document.headers.get("content-location"))
    items: list[FeedItem] = []
    for position, entry in enumerate(parsed.entries, start=1):
        item = _read_entry(entry, position, feed_link)
        if isinstance(item, str):
            problems.append(f"{source}: {item}")
        else:
            items.append(item)
    return ParsedFeed(tuple(items), tuple(problems), len(parsed.entries))


def _why_not_a_feed(document: Fetched, error: BaseException | None) -> str:
    kind = document.headers.get("content-type", "").split(";")[0].strip().lower()
    start = document.body[:200].lstrip().lower()
    if not start:
        return "empty document, not an RSS or Atom feed"
    if kind in _HTML_TYPES or start.startswith((b"<!doctype html", b"<html")):
        # Blogs link their feed from the page; Squarespace's is the blog's ?format=rss
        return "a web page, not an RSS or Atom feed (give the feed's address, not the blog's)"
    if error is not None and not isinstance(error, _HARMLESS_BOZO):
        return f"not an RSS or Atom feed ({_xml_error(error)})"
    return "not an RSS or Atom feed"


def _xml_error(error: BaseException) -> str:
    message = _one_line(str(getattr(error, "getMessage", lambda: error)()))
    line = getattr(error, "getLineNumber", None)
    return f"line {line()}: {message}" if callable(line) else message


def _entry_name(entry: Any, position: int) -> str:
    title = _text_of(entry.get("title"))
    if title:
        return f"entry {position} ({title!r})"
    for key in ("link", "id"):
        if entry.get(key):
            return f"entry {position} ({_one_line(str(entry[key]))[:80]})"
    return f"entry {position}"


def _read_entry(entry: Any, position: int, feed_link: str | None) -> FeedItem | str:
    """One entry as a :class:`FeedItem`, or a message saying why it cannot be used."""
    name = _entry_name(entry, position)
    title = _text_of(entry.get("title"))
    raw_link = entry.get("link")
    if not title:
        return f"{name}: no title; skipped"
    if not raw_link:
        return f"{name}: no link; skipped"
    link = _absolute_http(raw_link, feed_link)
    if link is None:
        return f"{name}: its link {_one_line(str(raw_link))[:80]!r} is not a web address; skipped"
    raw_body, body_type, from_summary = _raw_body(entry)
    clean = sanitize_html(_as_html(raw_body, body_type), base_url=link)
    summary = None
    # feedparser copies the content into `summary` (without a summary_detail)
    # when the entry has no summary of its own: only a real one counts.
    if not from_summary and entry.get("summary_detail") and entry.get("summary") != raw_body:
        summary_text = _text_of(entry.get("summary"))
        if summary_text and summary_text != _text_of(clean):
            summary = _shorten(summary_text, SUMMARY_LENGTH)
    author = _author(entry)
    image = _image(entry, link, clean)
    # An entry with nothing but a title still deserves a way to read it.
    body = html_to_body(clean) if clean.strip() else f"[Read it on the blog](<{link}>)\n"
    content_hash = _hash([title, link, author, summary, image, raw_body])
    guid = _one_line(str(entry.get("id") or ""))
    return FeedItem(
        position=position,
        key=entry_key(guid, link, f"{title}\n{raw_body}"),
        title=title,
        link=link,
        body=body,
        content_hash=content_hash,
        author=author,
        summary=summary,
        image=image,
        published=_published(entry),
    )


def entry_key(guid: str | None, link: str | None, content: str) -> str:
    """An entry's identity across imports: its guid, else its link, else a content hash."""
    for candidate in (guid, link):
        key = _one_line(candidate or "")
        if key:
            return key if len(key) <= MAX_KEY_LENGTH else "sha256:" + _digest(key)
    return "sha256:" + _digest(content)


def _raw_body(entry: Any) -> tuple[str, str, bool]:
    """(content, its MIME type, whether it is the summary): the fullest the entry has."""
    contents = entry.get("content") or []
    for wanted in (_HTML_TYPES, None):
        for content in contents:
            if wanted is None or content.get("type") in wanted:
                return str(content.get("value") or ""), str(content.get("type") or ""), False
    detail = entry.get("summary_detail") or {}
    return str(entry.get("summary") or ""), str(detail.get("type") or "text/html"), True


def _as_html(value: str, mime: str) -> str:
    if mime in _HTML_TYPES or not mime:
        return value
    paragraphs = re.split(r"\n\s*\n", value.strip())
    return "".join(f"<p>{html.escape(p)}</p>" for p in paragraphs if p.strip())


_RSS_AUTHOR: Final = re.compile(r"^\s*\S+@\S+\s*\((?P<name>[^()]+)\)\s*$")


def _author(entry: Any) -> str | None:
    raw = str(entry.get("author") or "")
    # RSS writes "email (Name)", which feedparser's author_detail gets wrong
    rss_style = _RSS_AUTHOR.match(raw)
    if rss_style:
        return _text_of(rss_style.group("name")) or None
    detail = entry.get("author_detail") or {}
    name = _text_of(detail.get("name"))
    if not name and "@" not in raw:
        name = _text_of(raw)
    return name or None


def _image(entry: Any, link: str, clean_body: str) -> str | None:
    """The hero image: media:content, media:thumbnail, an image enclosure, else the first <img>."""
    candidates: list[str] = []
    for media in entry.get("media_content") or []:
        mime = str(media.get("type") or "")
        if media.get("medium") == "image" or mime.startswith("image/"):
            candidates.append(str(media.get("url") or ""))
    candidates += [str(thumb.get("url") or "") for thumb in entry.get("media_thumbnail") or []]
    for enclosure in entry.get("links") or []:
        if enclosure.get("rel") == "enclosure" and str(enclosure.get("type", "")).startswith(
            "image/"
        ):
            candidates.append(str(enclosure.get("href") or ""))
    first_img = re.search(r"<img\b[^>]*\bsrc=\"([^\"]+)\"", clean_body)
    if first_img:
        candidates.append(html.unescape(first_img.group(1)))
    for candidate in candidates:
        url = _absolute_http(candidate, link)
        if url is not None:
            return url
    return None


def _published(entry: Any) -> datetime | None:
    moment = entry.get("published_parsed") or entry.get("updated_parsed")
    if moment is None:
        return None
    try:
        # feedparser hands back UTC struct_times
        return datetime.fromtimestamp(calendar.timegm(moment), UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return None
