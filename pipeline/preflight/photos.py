"""The author's photo is square (issue 17).

The email shows ``[authors.NAME] photo_url`` as a 64x64 circle with
``object-fit: cover``, which Outlook for Windows and Yahoo ignore: there a
photo that is not square is squashed into the circle. Only the image's size is
needed, so only its first bytes are read (see :mod:`.image_size`), over the
preflight's own HTTP client for a web address, or from the file for a path
(relative to the settings file). Anything wrong here is a warning: a photo
never gets mail rejected, and a host that cannot be reached must not stop an
offline machine.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path
from urllib.parse import unquote, urlsplit

import httpx

from pipeline.errors import PipelineError
from pipeline.preflight.image_size import image_format, image_size
from pipeline.preflight.links import http_client
from pipeline.preflight.report import Check, passed, warned

GROUP = "email"
NAME = "Author photo"
#: The most read while looking for the size; a JPEG's EXIF block can be large.
MAX_BYTES = 512 * 1024
SQUARE_FIX = "crop the photo to a square, e.g. 256x256"


class PhotoUnreadable(PipelineError):
    """The photo could not be read; the message says why (for the check's line)."""


def photo_check(
    author: str,
    photo_url: str,
    *,
    root: Path,
    timeout: float,
    total: float,
    clock: Callable[[], float] = time.monotonic,
) -> Check:
    """One line: the author's photo is square, or what is wrong and how to fix it."""
    try:
        head = read_head(photo_url, root=root, timeout=timeout, total=total, clock=clock)
    except PhotoUnreadable as problem:
        return warned(
            GROUP,
            NAME,
            f"{author}'s photo {photo_url} {problem}",
            f"check photo_url under [authors.{author}] in newsletter.toml",
        )
    size = image_size(head)
    if size is None:
        what = image_format(head)
        found = (
            f"its size is not in the first {len(head) // 1024} KB of the {what.upper()} file"
            if what
            else "is not a PNG, JPEG, GIF or WebP image"
        )
        return warned(GROUP, NAME, f"{author}'s photo {photo_url}: {found}", SQUARE_FIX)
    width, height = size
    if width != height:
        return warned(
            GROUP,
            NAME,
            f"{author}'s photo is {width}x{height}, not square: Outlook for Windows and Yahoo "
            "ignore object-fit, so the 64x64 circle shows it squashed",
            SQUARE_FIX,
        )
    return passed(GROUP, NAME, f"{author}'s photo is {width}x{height}, square")


def read_head(
    photo_url: str,
    *,
    root: Path,
    timeout: float,
    total: float,
    clock: Callable[[], float] = time.monotonic,
) -> bytes:
    """The first bytes of the photo: until its size is known, at most :data:`MAX_BYTES`.

    Raises :class:`PhotoUnreadable` when the file or the URL cannot be read.
    """
    parts = urlsplit(photo_url)
    if parts.scheme in ("http", "https"):
        return _fetch_head(photo_url, timeout=timeout, total=total, clock=clock)
    if parts.scheme not in ("", "file"):
        raise PhotoUnreadable(f"is not a web address or a file ({parts.scheme}:)")
    path = Path(unquote(parts.path)) if parts.scheme == "file" else Path(photo_url)
    try:
        with (root / path).open("rb") as stream:
            return _read_until_sized(iter(lambda: stream.read(16 * 1024), b""))
    except OSError as error:
        raise PhotoUnreadable(f"cannot be read: {error.strerror or error}") from error


def _fetch_head(url: str, *, timeout: float, total: float, clock: Callable[[], float]) -> bytes:
    deadline = clock() + total
    try:
        # Redirects are followed here: photos often live behind a CDN's redirect.
        with (
            http_client(timeout, follow_redirects=True) as client,
            client.stream("GET", url) as response,
        ):
            if response.status_code >= 400:
                raise PhotoUnreadable(f"answered {response.status_code}")
            return _read_until_sized(response.iter_bytes(), deadline=deadline, clock=clock)
    except httpx.TimeoutException as error:
        raise PhotoUnreadable(f"did not answer within {timeout:g} s") from error
    except httpx.HTTPError as error:
        raise PhotoUnreadable(f"could not be reached ({type(error).__name__})") from error


def _read_until_sized(
    blocks: Iterable[bytes],
    *,
    deadline: float | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> bytes:
    """Join ``blocks`` until the size can be read, or enough was read to give up."""
    head = b""
    for block in blocks:
        head += block
        if image_size(head) is not None or len(head) >= MAX_BYTES:
            break
        if image_format(head[:16]) is None and len(head) >= 16:
            break  # not an image we know: no point reading on
        if deadline is not None and clock() > deadline:
            raise PhotoUnreadable("was still downloading when the time allowed ran out")
    return head[:MAX_BYTES]
