"""Decoding and validating images: the same rules for training files and web uploads.

An image is accepted only if its bytes decode completely as JPEG or PNG; the file name and any
declared content type are ignored. Anything else raises :class:`InvalidImageError`, whatever the
decoder's own exception was. A multi-picture JPEG (MPO, as phones write for depth or stereo) is a
JPEG whose first picture is the photo.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import Final

from PIL import Image, ImageOps, UnidentifiedImageError

from fsdl_lib.exceptions import InvalidImageError

ACCEPTED_FORMATS: Final[tuple[str, ...]] = ("JPEG", "PNG")
"""Pillow format names of the accepted encodings."""

EXTENSIONS: Final[dict[str, str]] = {"JPEG": "jpg", "PNG": "png"}
"""File extension used when storing an image of each accepted format."""

DEFAULT_MAX_PIXELS: Final[int] = 25_000_000


def read_source(source: bytes | str | Path) -> tuple[bytes, str | None]:
    """Return the bytes of ``source`` and a name to use in error messages."""
    if isinstance(source, bytes | bytearray | memoryview):
        return bytes(source), None
    path = Path(source)
    try:
        return path.read_bytes(), str(path)
    except OSError as exc:
        raise InvalidImageError(f"cannot read file ({exc.strerror})", source=str(path)) from exc


def detect_format(data: bytes) -> str:
    """Return ``"JPEG"`` or ``"PNG"`` from the header of ``data`` (no full decode)."""
    if not data:
        raise InvalidImageError("empty file")
    try:
        with Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS) as image:
            # Pillow opens a multi-picture JPEG through its JPEG plugin and calls it MPO.
            return "JPEG" if image.format == "MPO" else str(image.format)
    except UnidentifiedImageError:
        raise InvalidImageError("not a JPEG or PNG image") from None
    except Image.DecompressionBombError:
        raise InvalidImageError("image too large: its header declares far more pixels than a photo has") from None
    except Exception as exc:  # any decoder failure is a bad image, never a crash
        raise InvalidImageError(f"unreadable image header ({type(exc).__name__}: {exc})") from None


def load_image(source: bytes | str | Path, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Decode ``source`` (bytes or a path) into an RGB image, upright per its EXIF orientation.

    Raises :class:`InvalidImageError` for anything that is not a complete JPEG or PNG image, and
    for images larger than ``max_pixels`` (checked from the header, before decoding).
    """
    data, name = read_source(source)
    return decode_image(data, max_pixels=max_pixels, name=name)[0]


def decode_image(
    data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS, name: str | None = None
) -> tuple[Image.Image, str]:
    """:func:`load_image` of bytes, with the format it found (``"JPEG"`` or ``"PNG"``): one header
    parse for both (the web app needs the format to keep the upload)."""
    try:
        image_format = detect_format(data)
    except InvalidImageError as exc:
        raise InvalidImageError(exc.reason, source=name) from None
    try:
        with warnings.catch_warnings():
            # Pillow's own bomb check warns below its hard limit; ours is explicit.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=(image_format,)) as image:
                width, height = image.size
                if width < 1 or height < 1:
                    raise InvalidImageError("image has no pixels", source=name)
                if width * height > max_pixels:
                    raise InvalidImageError(
                        f"image is {width}x{height} = {width * height} pixels, more than the limit of {max_pixels}",
                        source=name,
                    )
                image.load()
                upright = ImageOps.exif_transpose(image)
                return upright.convert("RGB"), image_format
    except InvalidImageError:
        raise
    except Image.DecompressionBombError as exc:
        raise InvalidImageError(f"image too large ({exc})", source=name) from None
    except MemoryError:
        raise InvalidImageError("image too large to decode in memory", source=name) from None
    except Exception as exc:  # any decoder failure is a bad image, never a crash
        reason = f"truncated or corrupt {image_format} data ({type(exc).__name__}: {exc})"
        raise InvalidImageError(reason, source=name) from None
