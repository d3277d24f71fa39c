"""Getting a feed's bytes: an http(s) GET (httpx, timeouts, conditional) or a local file.

A URL is fetched with the ETag and Last-Modified the server sent last time, so an
unchanged feed costs a 304; redirects are followed and the final address becomes
the base for relative links. Either way the document is capped at
:data:`MAX_FEED_BYTES`, and every failure is one :class:`FeedError` line.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final
from urllib.parse import unquote, urljoin, urlsplit

import httpx

from pipeline import __version__
from pipeline.feeds.records import DEFAULT_TIMEOUT, FeedError
from pipeline.feeds.text import _one_line

USER_AGENT: Final = f"newsletter-pipeline/{__version__} (feed import)"
#: A blog's feed is kilobytes to a few megabytes; more than this is not a feed we want.
MAX_FEED_BYTES: Final = 20 * 1024 * 1024

_ACCEPT: Final = (
    "application/rss+xml, application/atom+xml, application/xml;q=0.9, text/xml;q=0.9, */*;q=0.1"
)


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
