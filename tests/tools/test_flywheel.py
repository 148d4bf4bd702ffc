"""The flywheel driver's photos (fsdl_tools.flywheel.fresh_photo): new files, the same scene."""

from __future__ import annotations

import hashlib
import io

import numpy as np
from PIL import Image, ImageOps

from fsdl_tools.flywheel import fresh_photo
from tests.conftest import SAMPLE_DIR


def test_a_fresh_photo_is_a_new_file_of_the_same_scene_mirrored():
    source = sorted((SAMPLE_DIR / "sea").glob("*.jpg"))[0]
    fresh = fresh_photo(source)
    assert hashlib.sha256(fresh).digest() != hashlib.sha256(source.read_bytes()).digest()
    image, original = Image.open(io.BytesIO(fresh)), Image.open(source).convert("RGB")
    assert (image.format, image.size) == ("JPEG", original.size)
    difference = np.abs(np.asarray(image, dtype=float) - np.asarray(ImageOps.mirror(original), dtype=float))
    assert difference.mean() < 4  # JPEG's loss, no more
    assert fresh_photo(source) == fresh  # the same source gives the same photo
