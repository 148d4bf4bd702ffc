"""Metadata removed from uploads, pixels left exactly as they were.

A photo carries more than its pixels: EXIF (the camera, the time, GPS coordinates), XMP, IPTC,
comments, thumbnails, and after an MPO photo, further pictures. :func:`strip_metadata` drops all of
it without decoding or re-encoding anything: segments (JPEG) and chunks (PNG) are copied or left
out whole, so the file decodes to the same pixels. What the decoder needs stays: the JPEG tables,
frame and scans, JFIF, the ICC profile and Adobe's colour-transform marker; PNG's critical chunks
and the colour chunks. One thing of EXIF is kept, rewritten alone: the orientation, because a
photo's pixels are displayed (and decoded here, :func:`fsdl_lib.images.decode_image`) turned by it.

Anything that is not a well-formed JPEG or PNG raises :class:`InvalidImageError`.
"""

from __future__ import annotations

import re
import struct
import zlib
from typing import Final

from PIL import Image

from fsdl_lib.exceptions import InvalidImageError

JPEG_SOI: Final = b"\xff\xd8"
PNG_SIGNATURE: Final = b"\x89PNG\r\n\x1a\n"
ORIENTATION_TAG: Final = 0x0112

# A marker inside entropy-coded data: 0xFF followed by anything but a stuffed zero, a restart
# marker or another 0xFF (a fill byte).
_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")
_KEPT_APP = {0xE0: b"JFIF\x00", 0xE2: b"ICC_PROFILE\x00", 0xEE: b"Adobe"}
"""The application segments kept, by marker and the identifier their payload must start with."""
_PNG_KEPT: Final = frozenset(
    {b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tRNS", b"cHRM", b"gAMA", b"iCCP", b"sBIT", b"sRGB", b"bKGD", b"pHYs"}
)
"""PNG chunks kept: the critical ones, and those that say how to show the colours."""
_RAW_EXIF_TEXT: Final = b"Raw profile type exif"


def strip_metadata(data: bytes) -> bytes:
    """``data`` (a JPEG or PNG file) without its metadata; the same pixels when decoded."""
    if data.startswith(JPEG_SOI):
        return _strip_jpeg(data)
    if data.startswith(PNG_SIGNATURE):
        return _strip_png(data)
    raise InvalidImageError("not a JPEG or PNG image")


def _orientation(exif: bytes) -> int:
    """The orientation an EXIF block (with or without its ``Exif\\0\\0`` header) says; 1 when none."""

    try:
        parsed = Image.Exif()
        parsed.load(exif if exif.startswith(b"Exif\x00\x00") else b"Exif\x00\x00" + exif)
        value = int(parsed.get(ORIENTATION_TAG, 1))
    except Exception:  # what the decoder cannot read it ignores too
        return 1
    return value if 1 <= value <= 8 else 1


def _orientation_only(orientation: int) -> bytes:
    """An EXIF block (``Exif\\0\\0`` and TIFF) holding the orientation and nothing else."""

    exif = Image.Exif()
    exif[ORIENTATION_TAG] = orientation
    return exif.tobytes()


def _strip_jpeg(data: bytes) -> bytes:
    out = [JPEG_SOI]
    orientation: int | None = None
    i, n = 2, len(data)
    while True:
        if i >= n:
            raise InvalidImageError("truncated JPEG: no end-of-image marker")
        if data[i] != 0xFF:
            raise InvalidImageError(f"corrupt JPEG: unexpected byte at offset {i}")
        while i < n and data[i] == 0xFF:  # fill bytes before a marker
            i += 1
        if i >= n:
            raise InvalidImageError("truncated JPEG")
        marker = data[i]
        i += 1
        if marker == 0xD9:  # end of image: anything after it (another MPO picture, say) is dropped
            out.append(b"\xff\xd9")
            break
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:  # markers without a length
            out.append(bytes((0xFF, marker)))
            continue
        if i + 2 > n:
            raise InvalidImageError("truncated JPEG segment")
        (length,) = struct.unpack(">H", data[i : i + 2])
        if length < 2 or i + length > n:
            raise InvalidImageError("truncated JPEG segment")
        payload = data[i + 2 : i + length]
        segment = data[i - 2 : i + length]
        i += length
        if marker == 0xDA:  # start of scan: its entropy-coded data runs to the next marker
            found = _MARKER.search(data, i)
            if found is None:
                raise InvalidImageError("truncated JPEG scan")
            out.append(segment)
            out.append(data[i : found.start()])
            i = found.start()
        elif marker == 0xE1 and payload.startswith(b"Exif\x00\x00"):
            if orientation is None:  # the decoder reads the first
                orientation = _orientation(payload)
        elif 0xE0 <= marker <= 0xEF or marker == 0xFE or 0xF0 <= marker <= 0xFD:
            identifier = _KEPT_APP.get(marker)
            if identifier is not None and payload.startswith(identifier):
                out.append(segment)
        else:
            out.append(segment)
    if orientation not in (None, 1):
        exif = _orientation_only(orientation)
        out.insert(1, b"\xff\xe1" + struct.pack(">H", len(exif) + 2) + exif)
    return b"".join(out)


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _raw_exif_text(kind: bytes, body: bytes) -> bytes | None:
    """The EXIF of a ``Raw profile type exif`` text chunk (as ImageMagick writes it), else None."""
    keyword, _, rest = body.partition(b"\x00")
    if keyword != _RAW_EXIF_TEXT:
        return None
    try:
        if kind == b"tEXt":
            text = rest
        elif kind == b"zTXt":  # compression method, then the zlib stream
            text = zlib.decompress(rest[1:])
        else:  # iTXt: compressed flag, method, language, translated keyword, text
            compressed, rest = rest[0], rest[2:]
            text = rest.split(b"\x00", 2)[2]
            text = zlib.decompress(text) if compressed else text
        return bytes.fromhex("".join(text.decode("latin-1").split("\n")[3:]))
    except (ValueError, IndexError, zlib.error):
        return None


def _strip_png(data: bytes) -> bytes:
    out = [PNG_SIGNATURE]
    exif: bytes | None = None
    raw_exif: bytes | None = None
    i, n = len(PNG_SIGNATURE), len(data)
    while True:
        if i + 8 > n:
            raise InvalidImageError("truncated PNG: no IEND chunk")
        (length,) = struct.unpack(">I", data[i : i + 4])
        kind = data[i + 4 : i + 8]
        end = i + 12 + length
        if end > n:
            raise InvalidImageError("truncated PNG chunk")
        body = data[i + 8 : i + 8 + length]
        if kind in _PNG_KEPT:
            out.append(data[i:end])
        elif kind == b"eXIf":
            exif = exif if exif is not None else body
        elif kind in (b"tEXt", b"zTXt", b"iTXt") and raw_exif is None:
            raw_exif = _raw_exif_text(kind, body)
        elif kind[:1].isupper():
            raise InvalidImageError(f"PNG with an unknown critical chunk {kind!r}")
        i = end
        if kind == b"IEND":  # anything after it is dropped
            break
    found = exif if exif is not None else raw_exif
    orientation = _orientation(found) if found is not None else 1
    if orientation != 1:  # right after IHDR, before the image data, as the PNG spec asks
        out.insert(2, _chunk(b"eXIf", _orientation_only(orientation)[len(b"Exif\x00\x00") :]))
    return b"".join(out)
