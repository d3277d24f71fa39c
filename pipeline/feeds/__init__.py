"""Import a blog's RSS or Atom feed into article files (``newsletter import-feed``).

One source (an http(s) URL or a local file) is fetched, parsed by feedparser and
turned, entry by entry, into the same ``articles/<slug>.md`` files a writer would
write by hand: front matter plus a Markdown body. Nothing a feed says reaches a
file unsanitized: the entry's HTML goes through nh3 (no script, style, iframe,
form, event handler, ``javascript:`` or ``data:`` URL; links and images made
absolute) before markdownify turns it into Markdown, and render sanitizes again.

Importing is idempotent. Each entry has a key (its guid, else its link, else a
hash of its content) written into the article's front matter (``feed_key``) and
into the database, with a hash of what the feed said (``feed_hash``): a second
import adds nothing, and an entry edited on the blog is reported as changed
(``--update`` rewrites the files not yet sent). Every bad input is one line
naming the feed or the entry, and the good entries are imported regardless.
"""

from __future__ import annotations

import calendar
import hashlib
import html
import io
import json
import os
import re
import tempfile
import unicodedata
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, Final
from urllib.parse import unquote, urljoin, urlsplit
from zoneinfo import ZoneInfo

import feedparser
import httpx
import nh3
import yaml
from markdownify import MarkdownConverter
from pydantic import ValidationError
from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from pipeline import __version__
from pipeline.content.articles import (
    SLUG_PATTERN,
    Article,
    ArticleStatus,
    FrontMatter,
    load_articles,
)
from pipeline.errors import PipelineError
from pipeline.render import markdown_to_html
from pipeline.store.models import FeedEntry, FeedSource, utcnow

USER_AGENT: Final = f"newsletter-pipeline/{__version__} (feed import)"
DEFAULT_TIMEOUT: Final = 20.0
#: A blog's feed is kilobytes to a few megabytes; more than this is not a feed we want.
MAX_FEED_BYTES: Final = 20 * 1024 * 1024
#: A guid longer than this is stored as its hash (keys are indexed database values).
MAX_KEY_LENGTH: Final = 500
SUMMARY_LENGTH: Final = 200
SLUG_LENGTH: Final = 80

_ACCEPT: Final = (
    "application/rss+xml, application/atom+xml, application/xml;q=0.9, text/xml;q=0.9, */*;q=0.1"
)
_HTML_TYPES: Final = frozenset({"text/html", "application/xhtml+xml"})
# feedparser flags these as bozo, but they say nothing about the document itself:
# a feed served as text/plain, or declared in one encoding and readable in another.
_HARMLESS_BOZO: Final = (
    feedparser.NonXMLContentType,
    feedparser.CharacterEncodingOverride,
)


class FeedError(PipelineError, ValueError):
    """A feed cannot be imported at all, or an option is unusable; one line."""


# -- records -------------------------------------------------------------------------


@dataclass(frozen=True)
class ImportOptions:
    """What ``import-feed`` was asked to do."""

    series: str
    status: ArticleStatus = "queued"
    #: Only entries published at or after this moment.
    since: datetime | None = None
    #: At most this many new articles, oldest first (the next run takes the next ones).
    limit: int | None = None
    #: Rewrite articles whose entry changed on the blog, unless already sent.
    update: bool = False
    timeout: float = DEFAULT_TIMEOUT

    def __post_init__(self) -> None:
        if not SLUG_PATTERN.fullmatch(self.series):
            raise FeedError(
                f"--series must be lowercase letters, digits and hyphens, not {self.series!r}"
            )
        if self.limit is not None and self.limit < 1:
            raise FeedError(f"--limit must be 1 or more, not {self.limit}")
        if self.timeout <= 0:
            raise FeedError(f"--timeout must be more than 0 seconds, not {self.timeout:g}")


@dataclass(frozen=True)
class ImportedArticle:
    """One article file the import wrote, or found changed in the feed."""

    slug: str
    title: str
    path: Path
    part: int | None
    #: Already sent to subscribers (so never rewritten).
    sent: bool = False


@dataclass(frozen=True)
class FeedImportReport:
    """What one ``import-feed`` run did; ``problems`` are one line each."""

    source: str
    added: tuple[ImportedArticle, ...] = ()
    #: Changed in the feed and left as they are (no ``--update``, or already sent).
    changed: tuple[ImportedArticle, ...] = ()
    updated: tuple[ImportedArticle, ...] = ()
    unchanged: int = 0
    #: Imported before, then deleted by a writer: not brought back.
    removed: int = 0
    #: Outside ``--since`` or beyond ``--limit``: left for another run.
    held_back: int = 0
    problems: tuple[str, ...] = ()
    #: The server answered 304: nothing changed since the last import.
    not_modified: bool = False
    #: False when nothing could be read (no feed, or not one usable entry).
    readable: bool = True
    entries: int = 0


@dataclass(frozen=True)
class FeedItem:
    """One feed entry, read and converted, ready to become an article file."""

    position: int  # 1-based, in document order
    key: str
    title: str
    link: str
    body: str
    content_hash: str
    author: str | None = None
    summary: str | None = None
    image: str | None = None
    published: datetime | None = None

    def label(self) -> str:
        """How a message names this entry."""
        return f"entry {self.position} ({self.title!r})"


@dataclass(frozen=True)
class ParsedFeed:
    """What feedparser made of a document: usable entries and one line per problem."""

    items: tuple[FeedItem, ...]
    problems: tuple[str, ...]
    entries: int


# -- fetching ------------------------------------------------------------------------


@dataclass(frozen=True)
class Fetched:
    """A fetched document (or a 304), with what feedparser needs to resolve links."""

    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    etag: str | None = None
    last_modified: str | None = None
    not_modified: bool = False


def is_url(source: str) -> bool:
    """Whether ``source`` names an http(s) address rather than a file."""
    return source.lower().startswith(("http://", "https://"))


def fetch_url(
    url: str,
    *,
    etag: str | None = None,
    last_modified: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    transport: httpx.BaseTransport | None = None,
) -> Fetched:
    """GET a feed, conditionally when validators are known; raise :class:`FeedError`.

    Redirects are followed; the final address becomes the document's base so
    that relative links resolve against where the feed really is.
    """
    headers = {"User-Agent": USER_AGENT, "Accept": _ACCEPT}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    try:
        with (
            httpx.Client(
                timeout=timeout, follow_redirects=True, headers=headers, transport=transport
            ) as client,
            client.stream("GET", url) as response,
        ):
            if response.status_code == 304:
                return Fetched(not_modified=True, etag=etag, last_modified=last_modified)
            if not 200 <= response.status_code < 300:
                reason = response.reason_phrase or ""
                raise FeedError(
                    f"{url}: the server answered HTTP {response.status_code} {reason}".rstrip()
                    + "; nothing imported"
                )
            body = _read_capped(response.iter_bytes(), url)
            final = str(response.url)
            # feedparser resolves relative links against Content-Location; a
            # server's own header is itself relative to where we ended up.
            location = urljoin(final, response.headers.get("content-location", ""))
            passed = {"content-location": location}
            if "content-type" in response.headers:
                passed["content-type"] = response.headers["content-type"]
            if "content-language" in response.headers:
                passed["content-language"] = response.headers["content-language"]
            return Fetched(
                body=body,
                headers=passed,
                etag=response.headers.get("etag"),
                last_modified=response.headers.get("last-modified"),
            )
    except httpx.TimeoutException:
        raise FeedError(f"{url}: no answer within {timeout:g} s; nothing imported") from None
    except httpx.TooManyRedirects:
        raise FeedError(f"{url}: too many redirects; nothing imported") from None
    except httpx.HTTPError as exc:
        raise FeedError(f"{url}: cannot fetch the feed ({_one_line(str(exc))})") from None


def _read_capped(chunks: Iterator[bytes], where: str) -> bytes:
    buffer = io.BytesIO()
    for chunk in chunks:
        buffer.write(chunk)
        if buffer.tell() > MAX_FEED_BYTES:
            raise FeedError(f"{where}: larger than {MAX_FEED_BYTES // 2**20} MB; not read")
    return buffer.getvalue()


def read_file(source: str) -> Fetched:
    """Read a feed from a local file (a ``file://`` URL works too)."""
    path = Path(unquote(urlsplit(source).path)) if source.startswith("file://") else Path(source)
    try:
        if path.stat().st_size > MAX_FEED_BYTES:
            raise FeedError(f"{source}: larger than {MAX_FEED_BYTES // 2**20} MB; not read")
        body = path.read_bytes()
    except FileNotFoundError:
        raise FeedError(f"{source}: no such file (give a feed file or an http(s) URL)") from None
    except IsADirectoryError:
        raise FeedError(f"{source}: is a folder, not a feed file") from None
    except OSError as exc:
        raise FeedError(f"{source}: cannot read the file ({exc.strerror or exc})") from None
    # No base for relative links here: entries resolve them against their own link.
    return Fetched(body=body, headers={"content-type": "application/xml"})


# -- parsing -------------------------------------------------------------------------


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


# -- sanitizing and converting -------------------------------------------------------

# The tags render allows, plus h5/h6 (written as level-4 headings); anything else is
# unwrapped, its text kept.
_ALLOWED_TAGS: Final = frozenset(
    {
        "p", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "li", "strong", "em", "b", "i",
        "s", "del", "a", "img", "blockquote", "code", "pre", "hr", "br",
        "table", "thead", "tbody", "tr", "th", "td",
    }
)  # fmt: skip
_ALLOWED_ATTRIBUTES: Final = {
    "a": frozenset({"href", "title"}),
    "img": frozenset({"src", "alt", "title"}),
    "ol": frozenset({"start"}),
}
# Removed with everything inside: their content is code, styling or fallback noise.
_DROPPED_WITH_CONTENT: Final = frozenset(
    {
        "script", "style", "iframe", "object", "embed", "template", "svg", "math", "form",
        "select", "textarea", "button", "noscript", "head", "title", "canvas", "audio", "video",
    }
)  # fmt: skip
_URL_SCHEMES: Final = frozenset({"http", "https", "mailto"})


def _drop_empty_urls(tag: str, attribute: str, value: str) -> str | None:
    # feedparser blanks a javascript: href to ""; nh3 would then resolve "" to the
    # base address, a link to nowhere in particular. Drop it instead.
    if attribute in {"href", "src"} and not value.strip():
        return None
    return value


def sanitize_html(fragment: str, *, base_url: str) -> str:
    """Clean feed HTML with nh3, resolving relative links and images against ``base_url``.

    No script, style, iframe, form, input, object, svg, event handler,
    ``javascript:``, ``data:`` or other non-web URL survives; an image left
    without a source is removed.
    """
    cleaner = nh3.Cleaner(
        tags=set(_ALLOWED_TAGS),
        clean_content_tags=set(_DROPPED_WITH_CONTENT),
        attributes={tag: set(names) for tag, names in _ALLOWED_ATTRIBUTES.items()},
        url_schemes=set(_URL_SCHEMES),
        url_relative=("rewrite_with_base", base_url),
        attribute_filter=_drop_empty_urls,
        link_rel=None,
    )
    cleaned = cleaner.clean(fragment)
    # nh3's output is normalized, so these patterns see every <img> and heading:
    # an image without a source shows nothing; email shows headings down to h4.
    cleaned = re.sub(r"<img(?![^>]*\ssrc=)[^>]*>", "", cleaned)
    return re.sub(r"<(/?)h[56]>", r"<\1h4>", cleaned)


_to_markdown: Final = MarkdownConverter(
    heading_style="ATX",
    bullets="-",
    escape_misc=True,
    strong_em_symbol="*",
    newline_style="backslash",
).convert


def html_to_body(clean_html: str) -> str:
    """An article body for sanitized HTML: Markdown when it keeps every word and link.

    The Markdown is rendered back and compared with the HTML (text and URLs);
    if anything would be lost, the sanitized HTML itself becomes the body, as
    one raw HTML block (which render sanitizes again).
    """
    markdown = _to_markdown(clean_html).strip()
    if _fingerprint(markdown_to_html(markdown)) == _fingerprint(clean_html):
        return markdown + "\n"
    return _html_block(clean_html)


def _html_block(clean_html: str) -> str:
    # A Markdown raw HTML block ends at the first blank line; what follows would be
    # read as Markdown. So: no blank lines, and newlines inside <pre> as entities.
    def keep_pre(match: re.Match[str]) -> str:
        return match.group(0).replace("\n", "&#10;")

    flat = re.sub(r"<pre\b.*?</pre>", keep_pre, clean_html, flags=re.DOTALL)
    flat = re.sub(r"\n[ \t]*(?=\n)", "", flat).strip()
    return f"<div>\n{flat}\n</div>\n"


class _Fingerprint(HTMLParser):
    """Every character of text (whitespace aside) and every link and image URL."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.text: list[str] = []
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if (tag, name) in {("a", "href"), ("img", "src")} and value:
                self.urls.append(value)

    def handle_data(self, data: str) -> None:
        self.text.append("".join(data.split()))


def _fingerprint(fragment: str) -> tuple[str, tuple[str, ...]]:
    parser = _Fingerprint()
    parser.feed(fragment)
    parser.close()
    return "".join(parser.text), tuple(parser.urls)


# -- small helpers -------------------------------------------------------------------


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
    # tags=set() keeps text only; script and style go with their content
    return _one_line(html.unescape(nh3.clean(value, tags=set())))


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


def parse_since(text: str, tz: ZoneInfo) -> datetime:
    """``--since``: a date (its start, clinic time) or a date and time; raise :class:`FeedError`."""
    value = text.strip()
    try:
        if len(value) == 10:
            moment = datetime.combine(date.fromisoformat(value), time(0))
        else:
            moment = datetime.fromisoformat(value)
    except ValueError:
        raise FeedError(
            "--since must be a date (2024-01-31) or a date and time (2024-01-31 09:00),"
            f" not {text!r}"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=tz)


# -- feed state in the database ------------------------------------------------------


class FeedState:
    """Conditional-GET validators per feed and the keys of imported entries.

    Without a database (``sessions`` None) nothing is remembered here; the
    front matter's ``feed_key`` still keeps imports idempotent.
    """

    def __init__(self, sessions: sessionmaker[Session] | None) -> None:
        self.sessions = sessions

    def validators(self, url: str) -> tuple[str | None, str | None]:
        """The ETag and Last-Modified the server sent last time, if any."""
        if self.sessions is None:
            return None, None
        with self.sessions() as session:
            row = session.scalar(select(FeedSource).where(FeedSource.url == url))
            return (row.etag, row.last_modified) if row else (None, None)

    def remember(self, url: str, etag: str | None, last_modified: str | None) -> None:
        """Store (or with both None, forget) the validators for the next fetch of ``url``."""
        if self.sessions is None:
            return
        with self.sessions.begin() as session:
            row = session.scalar(select(FeedSource).where(FeedSource.url == url))
            if row is None:
                row = FeedSource(url=url)
                session.add(row)
            row.etag, row.last_modified, row.fetched_at = etag, last_modified, utcnow()

    def entries(self) -> dict[str, str]:
        """Every imported entry's key, with the slug it became."""
        if self.sessions is None:
            return {}
        with self.sessions() as session:
            rows = session.execute(select(FeedEntry.key, FeedEntry.slug))
            return {key: slug for key, slug in rows}

    def record(self, entries: Mapping[str, tuple[str, str]], feed_url: str) -> None:
        """Remember entries (key -> (slug, content hash)) as imported."""
        if self.sessions is None or not entries:
            return
        with self.sessions.begin() as session:
            session.execute(delete(FeedEntry).where(FeedEntry.key.in_(list(entries))))
            for key, (slug, content_hash) in entries.items():
                session.add(
                    FeedEntry(key=key, slug=slug, feed_url=feed_url, content_hash=content_hash)
                )


# -- writing article files -----------------------------------------------------------


def _front_matter(fields: dict[str, object]) -> str:
    data = {key: value for key, value in fields.items() if value is not None}
    # Validated exactly as `check` will read it back: a file we write always passes.
    FrontMatter.model_validate(data)
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=1_000_000)
    return f"---\n{text}---\n"


def _article_text(item: FeedItem, fields: dict[str, object]) -> str:
    return _front_matter(fields) + item.body


def _new_fields(item: FeedItem, options: ImportOptions, part: int) -> dict[str, object]:
    return {
        "title": item.title,
        "series": options.series,
        "part": part,
        "status": options.status,
        "summary": item.summary,
        "author": item.author,
        "canonical_url": item.link,
        "image": item.image,
        "feed_key": item.key,
        "feed_hash": item.content_hash,
    }


def _updated_fields(item: FeedItem, article: Article) -> dict[str, object]:
    # The writer's choices (slug, series, part, status, timing, subject) stay;
    # what the blog says (title, text, links, image) is taken from the feed.
    send_after = article.send_after.isoformat() if article.send_after else None
    slug = article.slug if article.slug != article.path.stem else None
    return {
        "title": item.title,
        "series": article.series,
        "part": article.part,
        "slug": slug,
        "status": article.status,
        "send_after": send_after,
        "subject": article.subject,
        "summary": item.summary,
        "author": item.author,
        "canonical_url": item.link,
        "image": item.image,
        "feed_key": item.key,
        "feed_hash": item.content_hash,
    }


def _write_new(directory: Path, slug: str, text: str, taken: set[str]) -> tuple[str, Path]:
    """Write a new file under a free slug; never replace an existing file."""
    base, number = slug, 1
    while True:
        if slug not in taken:
            path = directory / f"{slug}.md"
            temp = _temp_file(directory, text)
            try:
                # link() fails if the name exists, even if another process just made it
                os.link(temp, path)
                return slug, path
            except FileExistsError:
                pass
            finally:
                temp.unlink(missing_ok=True)
        taken.add(slug)
        number += 1
        slug = f"{base}-{number}"


def _rewrite(path: Path, text: str) -> None:
    os.replace(_temp_file(path.parent, text), path)


def _temp_file(directory: Path, text: str) -> Path:
    # A hidden name: load_articles skips it should we be interrupted mid-write.
    handle, name = tempfile.mkstemp(dir=directory, prefix=".import-", suffix=".tmp")
    with os.fdopen(handle, "w", encoding="utf-8", newline="\n") as stream:
        stream.write(text)
    return Path(name)


# -- the import ----------------------------------------------------------------------


def import_feed(
    source: str,
    options: ImportOptions,
    *,
    articles_dir: Path,
    tz: ZoneInfo,
    sessions: sessionmaker[Session] | None = None,
    sent_slugs: Collection[str] = (),
    transport: httpx.BaseTransport | None = None,
) -> FeedImportReport:
    """Import ``source`` (an http(s) URL or a file) into ``articles_dir``; never raises
    for a bad feed or entry: those are the report's ``problems``.

    New entries become articles in publish order with the next free part numbers
    of ``options.series``. ``sent_slugs`` are never rewritten by ``--update``.
    """
    if not articles_dir.is_dir():
        problem = f"{articles_dir}: articles folder not found; nothing imported"
        return FeedImportReport(source=source, problems=(problem,), readable=False)
    state = FeedState(sessions)
    remote = is_url(source)
    try:
        if remote:
            etag, last_modified = state.validators(source)
            document = fetch_url(
                source,
                etag=etag,
                last_modified=last_modified,
                timeout=options.timeout,
                transport=transport,
            )
        else:
            document = read_file(source)
        if document.not_modified:
            return FeedImportReport(source=source, not_modified=True)
        feed = parse_feed(document, source)
    except FeedError as exc:
        if remote:
            state.remember(source, None, None)
        return FeedImportReport(source=source, problems=(str(exc),), readable=False)

    result = _Import(source, options, articles_dir, tz, state, sent_slugs).run(feed)
    if remote:
        # Only a run that took in everything may skip the next download: after a
        # --limit, a --since or an edit not yet applied, the next run must see it all.
        complete = result.held_back == 0 and not result.incomplete
        if complete:
            state.remember(source, document.etag, document.last_modified)
        else:
            state.remember(source, None, None)
    readable = bool(feed.items) or feed.entries == 0
    return FeedImportReport(
        source=source,
        added=tuple(result.added),
        changed=tuple(result.changed),
        updated=tuple(result.updated),
        unchanged=result.unchanged,
        removed=result.removed,
        held_back=result.held_back,
        problems=feed.problems + tuple(result.problems),
        readable=readable,
        entries=feed.entries,
    )


class _Import:
    """One run's bookkeeping: which entries are new, changed or known, and the writes."""

    def __init__(
        self,
        source: str,
        options: ImportOptions,
        articles_dir: Path,
        tz: ZoneInfo,
        state: FeedState,
        sent_slugs: Collection[str],
    ) -> None:
        self.source = source
        self.options = options
        self.directory = articles_dir
        self.state = state
        self.sent = set(sent_slugs)
        found = load_articles(articles_dir, tz)
        self.by_key = {a.feed_key: a for a in found.articles if a.feed_key}
        self.known = state.entries()
        self.taken = {a.slug for a in found.articles}
        self.taken |= (
            {p.stem for p in articles_dir.glob("*.md")} if articles_dir.is_dir() else set()
        )
        self.next_part = 1 + max(
            (a.part or 0 for a in found.articles if a.series == options.series), default=0
        )
        self.added: list[ImportedArticle] = []
        self.changed: list[ImportedArticle] = []
        self.updated: list[ImportedArticle] = []
        self.unchanged = 0
        self.removed = 0
        self.held_back = 0
        self.problems: list[str] = []
        self.incomplete = False
        self.recorded: dict[str, tuple[str, str]] = {}

    def run(self, feed: ParsedFeed) -> _Import:
        """Sort out every item, write what is new or to update, and record the keys."""
        seen: set[str] = set()
        for item in _publish_order(feed.items):
            if item.key in seen:
                self.problems.append(
                    f"{self.source}: {item.label()}: same guid or link as an earlier entry; skipped"
                )
                continue
            seen.add(item.key)
            since = self.options.since
            if since is not None and (item.published is None or item.published < since):
                self.held_back += 1
                continue
            self._one(item)
        self.state.record(self.recorded, self.source)
        return self

    def _one(self, item: FeedItem) -> None:
        article = self.by_key.get(item.key)
        if article is not None:
            self._known(item, article)
            return
        if item.key in self.known:
            slug = self.known[item.key]
            if (self.directory / f"{slug}.md").exists():
                self.unchanged += 1
                self.problems.append(
                    f"{self.source}: {item.label()}: imported before as {slug}.md, which"
                    " cannot be read (see `newsletter check`); left as is"
                )
            else:
                self.removed += 1
            return
        if self.options.limit is not None and len(self.added) >= self.options.limit:
            self.held_back += 1
            return
        self._add(item)

    def _known(self, item: FeedItem, article: Article) -> None:
        if item.key not in self.known:
            # a file from before this database (a fresh clone): let the database catch up
            self.recorded[item.key] = (article.slug, article.feed_hash or "")
        if article.feed_hash == item.content_hash:
            self.unchanged += 1
            return
        sent = article.slug in self.sent
        record = ImportedArticle(article.slug, item.title, article.path, article.part, sent)
        if not self.options.update or sent:
            self.changed.append(record)
            self.incomplete = self.incomplete or not sent
            return
        try:
            _rewrite(article.path, _article_text(item, _updated_fields(item, article)))
        except (OSError, ValidationError) as exc:
            self._failed(item, f"cannot rewrite {article.path.name}", exc)
            return
        self.updated.append(record)
        self.recorded[item.key] = (article.slug, item.content_hash)

    def _add(self, item: FeedItem) -> None:
        try:
            text = _article_text(item, _new_fields(item, self.options, self.next_part))
            slug, path = _write_new(
                self.directory, slug_for(item.link, item.title), text, self.taken
            )
        except (OSError, ValidationError) as exc:
            self._failed(item, "cannot write its article", exc)
            return
        self.taken.add(slug)
        self.added.append(ImportedArticle(slug, item.title, path, self.next_part))
        self.recorded[item.key] = (slug, item.content_hash)
        self.next_part += 1

    def _failed(self, item: FeedItem, what: str, exc: Exception) -> None:
        if isinstance(exc, ValidationError):
            why = "; ".join(str(error["msg"]) for error in exc.errors())
        else:
            why = getattr(exc, "strerror", None) or str(exc)
        self.problems.append(f"{self.source}: {item.label()}: {what} ({_one_line(why)}); skipped")
        self.incomplete = True


def _publish_order(items: tuple[FeedItem, ...]) -> list[FeedItem]:
    # Oldest first. Feeds list newest first, so among equal (or missing) dates
    # the later position is the older entry; undated entries go last.
    far_future = datetime.max.replace(tzinfo=UTC)
    return sorted(items, key=lambda i: (i.published or far_future, -i.position))
