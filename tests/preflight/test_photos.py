"""The author photo check (issue 17): its size read from the first bytes, square or warned.

The PNG and JPEG bytes are real images made here (a PNG with zlib, a
baseline JPEG with one Huffman code per table; Chromium decodes both at the
sizes given), served by a loopback HTTP server.
"""

from __future__ import annotations

import contextlib
import math
import struct
import threading
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from pipeline.config import load_settings
from pipeline.newsletter import Newsletter
from pipeline.preflight import Status, clear_cache, run_preflight
from pipeline.preflight.image_size import image_size
from pipeline.preflight.photos import MAX_BYTES, SQUARE_FIX, photo_check, read_head
from tests.fakes import preflight_zones as zones
from tests.fakes.dns_server import dns_server
from tests.fakes.preflight_servers import plain_server
from tests.helpers import SAMPLE_SLUG, copy_sample_folder


def png_bytes(width: int, height: int) -> bytes:
    """A real greyscale PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    pixels = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(pixels))
        + chunk(b"IEND", b"")
    )


def jpeg_bytes(width: int, height: int, *, exif: int = 0, tail: int = 0) -> bytes:
    """A real baseline greyscale JPEG; ``exif`` bytes of APP1 before the frame header,
    ``tail`` bytes of comment after the image (a big file whose size comes first)."""

    def segment(marker: int, payload: bytes) -> bytes:
        return b"\xff" + bytes([marker]) + struct.pack(">H", len(payload) + 2) + payload

    parts = [b"\xff\xd8", segment(0xE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00")]
    if exif:
        parts.append(segment(0xE1, b"Exif\x00\x00" + b"\x00" * exif))
    parts += [
        segment(0xDB, b"\x00" + bytes([1] * 64)),  # quantization table
        segment(0xC0, b"\x08" + struct.pack(">HH", height, width) + b"\x01\x01\x11\x00"),
        # One code ("0") in each Huffman table: DC difference 0, AC end-of-block.
        segment(0xC4, b"\x00" + bytes([1] + [0] * 15) + b"\x00"),
        segment(0xC4, b"\x10" + bytes([1] + [0] * 15) + b"\x00"),
        segment(0xDA, b"\x01\x01\x00\x00\x3f\x00"),
    ]
    bits = "00" * (math.ceil(width / 8) * math.ceil(height / 8))
    bits += "1" * (-len(bits) % 8)
    parts.append(int(bits, 2).to_bytes(len(bits) // 8, "big") + b"\xff\xd9")
    for start in range(0, tail, 60_000):
        parts.append(segment(0xFE, b"c" * min(60_000, tail - start)))
    return b"".join(parts)


# -- reading the size from the header ----------------------------------------------------


def test_sizes_of_real_png_and_jpeg_images() -> None:
    assert image_size(png_bytes(300, 200)) == (300, 200)
    assert image_size(jpeg_bytes(256, 256)) == (256, 256)
    # The frame header after a 40 KB EXIF block.
    assert image_size(jpeg_bytes(640, 480, exif=40_000)) == (640, 480)


def test_sizes_from_gif_and_webp_headers() -> None:
    gif = b"GIF89a" + struct.pack("<HH", 123, 45) + b"\xf0\x00\x00"
    assert image_size(gif) == (123, 45)
    riff = b"RIFF\x00\x00\x00\x00WEBP"
    frame = b"\x10\x02\x00\x9d\x01\x2a"  # frame tag, then the start code
    lossy = riff + b"VP8 \x00\x00\x00\x00" + frame + struct.pack("<HH", 77, 99)
    assert image_size(lossy) == (77, 99)
    packed = (77 - 1) | ((98 - 1) << 14)
    lossless = riff + b"VP8L\x00\x00\x00\x00\x2f" + packed.to_bytes(4, "little")
    assert image_size(lossless) == (77, 98)
    extended = riff + b"VP8X\x00\x00\x00\x00" + b"\x00" * 4 + (499).to_bytes(3, "little")
    assert image_size(extended + (332).to_bytes(3, "little")) == (500, 333)


def test_no_size_from_a_truncated_or_unknown_file() -> None:
    assert image_size(png_bytes(10, 10)[:20]) is None
    assert image_size(jpeg_bytes(640, 480, exif=40_000)[:16_384]) is None
    assert image_size(b"<svg xmlns='http://www.w3.org/2000/svg'/>") is None


# -- fetching it -------------------------------------------------------------------------


@contextmanager
def image_server(files: dict[str, bytes]) -> Iterator[str]:
    """Serves ``files`` by path (404 otherwise) and /moved redirecting to the first."""
    first = next(iter(files))

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            if self.path == "/moved":
                self.send_response(302)
                self.send_header("Location", first)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body = files.get(self.path)
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            # The reader hangs up once it has the size: the point of the check.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.wfile.write(body or b"")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def check(url: str, root: Path = Path("."), timeout: float = 2.0) -> tuple[Status, str, str]:
    result = photo_check("Alan", url, root=root, timeout=timeout, total=10.0)
    return result.status, result.found, result.fix or ""


def test_a_non_square_photo_warns_with_the_fix_and_a_square_one_passes() -> None:
    files = {"/wide.png": png_bytes(300, 200), "/square.jpg": jpeg_bytes(256, 256)}
    with image_server(files) as site:
        wide = check(f"{site}/wide.png")
        square = check(f"{site}/square.jpg")
    assert wide[0] is Status.WARN
    assert "300x200, not square" in wide[1]
    assert wide[2] == SQUARE_FIX == "crop the photo to a square, e.g. 256x256"
    assert square == (Status.PASS, "Alan's photo is 256x256, square", "")


def test_only_the_start_of_a_big_photo_is_read() -> None:
    big = jpeg_bytes(640, 480, exif=40_000, tail=3_000_000)
    with image_server({"/big.jpg": big}) as site:
        head = read_head(f"{site}/big.jpg", root=Path("."), timeout=2.0, total=10.0)
        status, found, _ = check(f"{site}/big.jpg")
    assert len(big) > 3_000_000
    assert 40_000 < len(head) < 128 * 1024 < MAX_BYTES  # past the EXIF block, then stopped
    assert status is Status.WARN
    assert "640x480, not square" in found


def test_a_redirect_is_followed_and_a_missing_or_slow_photo_warns() -> None:
    with image_server({"/square.png": png_bytes(64, 64)}) as site:
        assert check(f"{site}/moved")[0] is Status.PASS
        missing = check(f"{site}/gone.png")
    assert missing[0] is Status.WARN
    assert missing[1] == f"Alan's photo {site}/gone.png answered 404"
    assert "[authors.Alan]" in missing[2]
    with plain_server() as slow_site:
        slow = check(f"{slow_site}/slow", timeout=0.3)
    assert slow[0] is Status.WARN
    assert slow[1].endswith("did not answer within 0.3 s")


def test_a_file_that_is_not_an_image_warns() -> None:
    with image_server({"/photo.svg": b"<svg xmlns='http://www.w3.org/2000/svg'/>"}) as site:
        status, found, fix = check(f"{site}/photo.svg")
    assert status is Status.WARN
    assert found.endswith("is not a PNG, JPEG, GIF or WebP image")
    assert fix == SQUARE_FIX


def test_a_local_photo_path_is_read_from_the_folder(tmp_path: Path) -> None:
    (tmp_path / "alan.jpg").write_bytes(jpeg_bytes(200, 300))
    status, found, _ = check("alan.jpg", root=tmp_path)
    assert status is Status.WARN and "200x300, not square" in found
    assert check("nope.jpg", root=tmp_path)[1].startswith("Alan's photo nope.jpg cannot be read")


# -- in the preflight --------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    clear_cache()
    yield
    clear_cache()


def test_preflight_warns_about_the_sample_authors_wide_photo(tmp_path: Path) -> None:
    config = copy_sample_folder(tmp_path / "clinic")
    settings = load_settings(config, environ={"NEWSLETTER_SECRET_KEY": "t"})
    with (
        dns_server(zones.correct_return_path()) as nameserver,
        image_server({"/alan.png": png_bytes(320, 240)}) as site,
    ):
        alan = settings.authors["Alan"].model_copy(update={"photo_url": f"{site}/alan.png"})
        settings = settings.model_copy(
            update={
                "web": settings.web.model_copy(update={"base_url": site}),
                "authors": {"Alan": alan},
                "preflight": settings.preflight.model_copy(
                    update={"nameservers": (nameserver,), "link_timeout": 2.0}
                ),
            }
        )
        newsletter = Newsletter(settings)
        report = run_preflight(newsletter, SAMPLE_SLUG)
        offline = run_preflight(newsletter, SAMPLE_SLUG, links=False)
    photo = [c for c in report.checks if c.name == "Author photo"]
    assert len(photo) == 1
    assert photo[0].status is Status.WARN
    assert (
        photo[0]
        .line()
        .endswith(
            "320x240, not square: Outlook for Windows and Yahoo ignore object-fit, so the "
            "64x64 circle shows it squashed -> fix: crop the photo to a square, e.g. 256x256"
        )
    )
    assert report.ok  # a warning: it never blocks a send
    assert not [c for c in offline.checks if c.name == "Author photo"]  # like the links
