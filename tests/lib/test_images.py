import io

import pytest
from PIL import Image

from fsdl_lib.exceptions import InvalidImageError
from fsdl_lib.images import detect_format, load_image
from tests.image_corpus import corpus


def encode(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


@pytest.fixture
def photo_bytes(sample_dir) -> bytes:
    return (sample_dir / "forest" / "10078.jpg").read_bytes()


def test_loads_sample_photo_as_rgb(sample_dir):
    image = load_image(sample_dir / "glacier" / "7512.jpg")
    assert image.mode == "RGB"
    assert image.size == (150, 135)


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "LA"])
def test_png_modes_become_rgb(mode):
    data = encode(Image.new(mode, (20, 10)), "PNG")
    assert detect_format(data) == "PNG"
    assert load_image(data).mode == "RGB"


def test_truncated_jpeg_is_rejected(photo_bytes):
    with pytest.raises(InvalidImageError, match="truncated or corrupt JPEG"):
        load_image(photo_bytes[: len(photo_bytes) // 2])


def test_text_renamed_jpg_is_rejected(tmp_path):
    path = tmp_path / "notes.jpg"
    path.write_text("these are not pixels\n" * 20)
    with pytest.raises(InvalidImageError, match="not a JPEG or PNG") as info:
        load_image(path)
    assert info.value.source == str(path)


@pytest.mark.parametrize("fmt", ["GIF", "BMP", "WEBP", "TIFF"])
def test_other_formats_are_rejected_whatever_the_name(fmt):
    with pytest.raises(InvalidImageError, match="not a JPEG or PNG"):
        load_image(encode(Image.new("RGB", (8, 8)), fmt))


def test_empty_and_missing_input(tmp_path):
    with pytest.raises(InvalidImageError, match="empty"):
        load_image(b"")
    with pytest.raises(InvalidImageError, match="cannot read file"):
        load_image(tmp_path / "absent.png")


def test_pixel_limit_checked_before_decoding():
    data = encode(Image.new("L", (4000, 3000)), "PNG")
    with pytest.raises(InvalidImageError, match="more than the limit of 1000000"):
        load_image(data, max_pixels=1_000_000)
    assert load_image(data, max_pixels=12_000_000).size == (4000, 3000)


def test_exif_orientation_is_applied():
    image = Image.new("RGB", (40, 20))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    assert load_image(encode(image, "JPEG", exif=exif)).size == (20, 40)


@pytest.mark.parametrize("sample", corpus(), ids=lambda s: s.name)
def test_corpus_file_is_decoded_upright_or_refused_with_a_reason(sample):
    if sample.accepted:
        image = load_image(sample.data)
        assert image.mode == "RGB"
        assert image.size == sample.size
    else:
        with pytest.raises(InvalidImageError) as refused:
            load_image(sample.data)
        assert sample.reason in refused.value.reason
