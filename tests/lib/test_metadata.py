"""Metadata is removed from uploads and the pixels stay exactly as they were."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from fsdl_lib.exceptions import InvalidImageError
from fsdl_lib.images import decode_image
from fsdl_lib.metadata import strip_metadata
from tests.conftest import SAMPLE_DIR
from tests.image_corpus import corpus

GPS_IFD = 0x8825
XMP = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:Description photoshop:City="Secret Town"/></x:xmpmeta>'


def sample_photo(label: str) -> Path:
    return sorted((SAMPLE_DIR / label).glob("*.jpg"))[0]


def pixels(data: bytes) -> np.ndarray:
    return np.asarray(decode_image(data)[0])


def spy_exif(orientation: int | None = 6) -> Image.Exif:
    """What a phone writes: camera, time, owner, GPS position, and (maybe) the orientation."""
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"
    exif[0x0110] = "Phone 15 Pro"
    exif[0x013B] = "Jane Doe"
    exif[0x0132] = "2026:11:30 08:15:00"
    if orientation is not None:
        exif[0x0112] = orientation
    gps = exif.get_ifd(GPS_IFD)
    gps[1], gps[2], gps[3], gps[4] = "N", (52.0, 31.0, 12.5), "E", (13.0, 24.0, 7.0)
    return exif


def jpeg_with_everything(orientation: int | None = 6) -> bytes:
    image = Image.open(sample_photo("mountain"))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=92, exif=spy_exif(orientation), xmp=XMP, comment=b"taken at home")
    data = buffer.getvalue()
    iptc = b"Photoshop 3.0\x00" + b"8BIM\x04\x04\x00\x00\x00\x00\x00\x0c" + b"\x1c\x02\x5a\x00\x07Berlin!"
    app13 = b"\xff\xed" + struct.pack(">H", len(iptc) + 2) + iptc
    return data[:2] + app13 + data[2:]


def png_with_everything(orientation: int = 8) -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "taken at home")
    info.add_itxt("XML:com.adobe.xmp", XMP.decode())
    info.add_text("Author", "Jane Doe", zip=True)
    buffer = io.BytesIO()
    Image.open(sample_photo("sea")).save(buffer, format="PNG", pnginfo=info, exif=spy_exif(orientation))
    return buffer.getvalue()


def png_chunks(data: bytes) -> list[bytes]:
    kinds, i = [], 8
    while i < len(data):
        (length,) = struct.unpack(">I", data[i : i + 4])
        kinds.append(data[i + 4 : i + 8])
        i += 12 + length
    return kinds


def jpeg_segments(data: bytes) -> list[int]:
    markers, i = [], 2
    while i < len(data):
        marker = data[i + 1]
        if marker == 0xDA:
            break
        markers.append(marker)
        (length,) = struct.unpack(">H", data[i + 2 : i + 4])
        i += 2 + length
    return markers


SECRETS = (b"PhoneMaker", b"Jane Doe", b"Secret Town", b"taken at home", b"Berlin", b"2026:11:30", b"adobe:ns:meta")


def test_a_phone_jpeg_keeps_its_pixels_and_orientation_and_nothing_else():
    original = jpeg_with_everything()
    assert all(secret in original for secret in SECRETS)
    stripped = strip_metadata(original)
    for secret in SECRETS:
        assert secret not in stripped, secret
    with Image.open(io.BytesIO(stripped)) as image:
        exif = image.getexif()
        assert dict(exif) == {0x0112: 6}  # the orientation, alone
        assert exif.get_ifd(GPS_IFD) == {}
        assert "comment" not in image.info
    assert set(jpeg_segments(stripped)) <= {0xE0, 0xE1, 0xE2, 0xEE, 0xDB, 0xC0, 0xC2, 0xC4, 0xDD}
    assert np.array_equal(pixels(stripped), pixels(original))
    assert pixels(stripped).shape[:2] == pixels(original).shape[:2]
    assert len(stripped) < len(original)


def test_without_an_orientation_no_exif_is_left_at_all():
    stripped = strip_metadata(jpeg_with_everything(orientation=None))
    assert b"Exif" not in stripped
    with Image.open(io.BytesIO(stripped)) as image:
        assert dict(image.getexif()) == {}


def test_a_png_keeps_its_pixels_and_orientation_and_nothing_else():
    original = png_with_everything()
    stripped = strip_metadata(original)
    for secret in (b"PhoneMaker", b"Jane Doe", b"Secret Town", b"taken at home"):
        assert secret not in stripped, secret
    assert b"tEXt" not in png_chunks(stripped)
    assert set(png_chunks(stripped)) <= {b"IHDR", b"eXIf", b"IDAT", b"IEND", b"sRGB", b"gAMA", b"pHYs"}
    with Image.open(io.BytesIO(stripped)) as image:
        assert dict(image.getexif()) == {0x0112: 8}
    assert np.array_equal(pixels(stripped), pixels(original))


def test_an_orientation_in_imagemagicks_raw_profile_is_kept_too():
    exif = Image.Exif()
    exif[0x0112], exif[0x013B] = 3, "Jane Doe"
    blob = exif.tobytes()[6:].hex()
    info = PngImagePlugin.PngInfo()
    info.add_text("Raw profile type exif", f"\nexif\n{len(blob) // 2:8d}\n{blob}\n", zip=True)
    buffer = io.BytesIO()
    Image.open(sample_photo("street")).save(buffer, format="PNG", pnginfo=info)
    original = buffer.getvalue()
    stripped = strip_metadata(original)
    assert b"Raw profile" not in stripped
    assert b"zTXt" not in png_chunks(stripped)
    with Image.open(io.BytesIO(stripped)) as image:
        assert dict(image.getexif()) == {0x0112: 3}  # the orientation, now in an eXIf chunk of its own
    assert np.array_equal(pixels(stripped), pixels(original))


@pytest.mark.parametrize("sample", [s for s in corpus() if s.accepted], ids=lambda s: s.name)
def test_every_accepted_upload_of_the_corpus_decodes_to_the_same_pixels(sample):
    stripped = strip_metadata(sample.data)
    assert np.array_equal(pixels(stripped), pixels(sample.data))


def test_every_sample_photo_decodes_to_the_same_pixels():
    photos = sorted(SAMPLE_DIR.glob("*/*.jpg"))
    assert len(photos) == 120
    for photo in photos:
        data = photo.read_bytes()
        assert np.array_equal(pixels(strip_metadata(data)), pixels(data)), photo


def test_a_multi_picture_jpeg_keeps_only_its_photo():
    mpo = next(s for s in corpus() if s.name == "multi-picture.jpg").data
    stripped = strip_metadata(mpo)
    assert stripped.count(b"\xff\xd9") == 1
    assert stripped.endswith(b"\xff\xd9")
    assert b"MPF" not in stripped
    with Image.open(io.BytesIO(stripped)) as image:
        assert image.format == "JPEG"
        assert getattr(image, "n_frames", 1) == 1


def test_the_features_of_the_stored_file_are_those_of_the_upload(extractor):
    original = jpeg_with_everything()
    stripped = strip_metadata(original)
    features = extractor.extract([decode_image(original)[0], decode_image(stripped)[0]])
    assert np.array_equal(features[0], features[1])


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"GIF89a", "not a JPEG or PNG"),
        (b"\xff\xd8\xff\xe1\x00\x10Exif", "truncated JPEG segment"),
        (b"\xff\xd8\xff\xdb\x00\x04\x00\x00", "no end-of-image marker"),
        (b"\xff\xd8\x00\x00", "unexpected byte"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR", "truncated PNG chunk"),
        (b"\x89PNG\r\n\x1a\n", "no IEND chunk"),
    ],
    ids=["gif", "short-segment", "no-eoi", "no-marker", "short-chunk", "no-chunks"],
)
def test_what_is_not_a_well_formed_file_is_refused_with_a_reason(data, reason):
    with pytest.raises(InvalidImageError, match=reason):
        strip_metadata(data)
