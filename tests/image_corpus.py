"""A corpus of unusual, hostile and broken image files, generated (nothing binary is committed).

Each entry says whether the platform must accept the file (and the upright size it decodes to) or
refuse it (and a fragment of the reason). The web app's upload tests and the feature store's tests
both run it: an upload gets 200 or a 4xx with that reason, a training split skips and reports the
refused files and extracts the rest.
"""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass

from PIL import Image

from tests.conftest import SAMPLE_DIR

PHOTO = (SAMPLE_DIR / "forest" / "10078.jpg").read_bytes()


@dataclass(frozen=True)
class Sample:
    name: str
    data: bytes
    accepted: bool
    size: tuple[int, int] | None = None  # upright (width, height) when accepted
    reason: str = ""  # a fragment of the refusal message


def _save(image: Image.Image, fmt: str, **params) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def _gradient(size=(64, 48)) -> Image.Image:
    image = Image.new("RGB", size)
    image.putdata([(x * 4 % 256, y * 5 % 256, (x + y) % 256) for y in range(size[1]) for x in range(size[0])])
    return image


def _png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width`` x ``height`` pixels (a decompression bomb's header)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\0" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def corpus() -> list[Sample]:
    base = _gradient()
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    palette = base.convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    sixteen = Image.new("I;16", (40, 30))
    sixteen.putdata([(x * 1500 + y * 700) % 65536 for y in range(30) for x in range(40)])
    apng = _save(base, "PNG", save_all=True, append_images=[_gradient().rotate(180)], duration=100, loop=0)
    mpo = _save(base, "MPO", save_all=True, append_images=[base.rotate(90)], exif=exif)
    jpeg = _save(base, "JPEG", quality=90)
    png = _save(base, "PNG")
    garbage = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 8
    return [
        # Unusual but legal: accepted, decoded upright.
        Sample("progressive.jpg", _save(base, "JPEG", progressive=True, quality=85), True, (64, 48)),
        Sample("exif-rotated.jpg", _save(base, "JPEG", exif=exif), True, (48, 64)),
        Sample("multi-picture.jpg", mpo, True, (48, 64)),
        Sample("cmyk.jpg", _save(base.convert("CMYK"), "JPEG"), True, (64, 48)),
        Sample("grayscale.jpg", _save(base.convert("L"), "JPEG"), True, (64, 48)),
        Sample("palette.png", _save(palette, "PNG"), True, (64, 48)),
        Sample("palette-transparent.png", _save(palette, "PNG", transparency=0), True, (64, 48)),
        Sample("rgba.png", _save(base.convert("RGBA"), "PNG"), True, (64, 48)),
        Sample("sixteen-bit.png", _save(sixteen, "PNG"), True, (40, 30)),
        Sample("one-bit.png", _save(base.convert("1"), "PNG"), True, (64, 48)),
        Sample("animated.png", apng, True, (64, 48)),
        Sample("one-pixel.png", _save(Image.new("RGB", (1, 1)), "PNG"), True, (1, 1)),
        # Broken or hostile: refused with a reason.
        Sample("empty.jpg", b"", False, reason="empty"),
        Sample("text.jpg", b"this is not an image\n" * 20, False, reason="not a JPEG or PNG"),
        Sample("gif.gif", _save(base, "GIF"), False, reason="not a JPEG or PNG"),
        Sample("webp.webp", _save(base, "WEBP"), False, reason="not a JPEG or PNG"),
        Sample("truncated.jpg", PHOTO[: len(PHOTO) // 3], False, reason="truncated or corrupt"),
        Sample("truncated.png", png[: len(png) // 2], False, reason="truncated or corrupt"),
        Sample("jpeg-header-only.jpg", jpeg[:200], False, reason="unreadable image header"),
        Sample("garbage-after-magic.jpg", garbage, False, reason="not a JPEG or PNG"),
        Sample("bad-png-crc.png", png[:40] + bytes([png[40] ^ 0xFF]) + png[41:], False, reason="not a JPEG or PNG"),
        Sample("over-the-limit.png", _png_claiming(6000, 5000), False, reason="more than the limit"),
        Sample("oversized-dimensions.png", _png_claiming(100_000, 100_000), False, reason="image too large"),
        Sample("zero-height.png", _png_claiming(64, 0), False, reason="not a JPEG or PNG"),
    ]
