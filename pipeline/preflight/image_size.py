"""Width and height of a PNG, JPEG, GIF or WebP image, read from its first bytes.

Preflight only needs an image's size, and the size sits in the header: a few
dozen bytes for PNG, GIF and WebP, the frame header after any EXIF block for
JPEG. Reading it here (no Pillow, which is not a dependency) lets the check
stop downloading as soon as the size is known.
"""

from __future__ import annotations

import struct

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: JPEG start-of-frame markers (SOF0-SOF15 except DHT, JPG and DAC): they carry the size.
_JPEG_FRAMES = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
#: JPEG markers that stand alone, without a length (TEM, RST0-7, SOI).
_JPEG_STANDALONE = frozenset({0x01, *range(0xD0, 0xD9)})


def image_format(data: bytes) -> str | None:
    """``png``, ``jpeg``, ``gif`` or ``webp`` from the signature; None for anything else."""
    if data.startswith(PNG_SIGNATURE):
        return "png"
    if data.startswith(b"\xff\xd8"):
        return "jpeg"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) in pixels, or None when ``data`` does not (yet) hold them.

    ``data`` is the start of the file; None also means "read more" for a
    JPEG whose frame header lies further on. For a JPEG the stored size is
    returned: an EXIF rotation swaps width and height, which does not change
    whether the image is square.
    """
    kind = image_format(data)
    if kind == "png":
        # The IHDR chunk comes first: length, b"IHDR", width, height.
        if len(data) >= 24 and data[12:16] == b"IHDR":
            width, height = struct.unpack(">II", data[16:24])
            return width, height
        return None
    if kind == "gif":
        if len(data) >= 10:
            width, height = struct.unpack("<HH", data[6:10])
            return width, height
        return None
    if kind == "webp":
        return _webp_size(data)
    if kind == "jpeg":
        return _jpeg_size(data)
    return None


def _webp_size(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8 " and len(data) >= 30 and data[23:26] == b"\x9d\x01\x2a":
        # Lossy: after the frame tag and start code, 14-bit width and height.
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L" and len(data) >= 25 and data[20] == 0x2F:
        # Lossless: width-1 and height-1 packed as two 14-bit fields.
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X" and len(data) >= 30:
        # Extended: 24-bit canvas width-1 and height-1.
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return width, height
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    """Walk the segments after SOI up to the first start-of-frame."""
    at = 2
    while at + 4 <= len(data):
        if data[at] != 0xFF:
            return None  # not a marker where one must be: a broken file
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte before a marker
            at += 1
            continue
        if marker in _JPEG_STANDALONE:
            at += 2
            continue
        (length,) = struct.unpack(">H", data[at + 2 : at + 4])
        if marker in _JPEG_FRAMES:
            # Segment: length, precision, height, width.
            if at + 9 > len(data):
                return None
            height, width = struct.unpack(">HH", data[at + 5 : at + 9])
            return width, height
        if marker == 0xDA:  # start of scan: no frame header before it
            return None
        at += 2 + length
    return None
