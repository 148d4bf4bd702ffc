#!/usr/bin/env python3
"""Incremental feature extraction: one new image out of N against a full run, measured in one run.

Target: the incremental update costs <= 3% of the full extraction.

    .venv/bin/python benchmarks/bench_incremental.py [--copies 2]   # N = 120 x copies images
"""

from __future__ import annotations

import argparse
import io
import shutil
import tempfile
import time
from pathlib import Path

from PIL import Image, ImageOps

from fsdl_lib.feature_store import FeatureStore
from fsdl_lib.features import FeatureExtractor

ROOT = Path(__file__).resolve().parent.parent


def build_split(target: Path, copies: int) -> int:
    """The sample photos, plus mirrored/rotated variants so that every file is distinct."""
    count = 0
    for photo in sorted((ROOT / "samples" / "intel_scenes").glob("*/*.jpg")):
        folder = target / photo.parent.name
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(photo, folder / photo.name)
        count += 1
        for k in range(1, copies):
            variant = ImageOps.mirror(Image.open(photo)).rotate(90 * k)
            variant.save(folder / f"{photo.stem}-v{k}.jpg", quality=90)
            count += 1
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--copies", type=int, default=2)
    args = parser.parse_args()
    fx = FeatureExtractor(offline_weights=True, image_size=224)
    with tempfile.TemporaryDirectory() as tmp:
        split = Path(tmp) / "train"
        n = build_split(split, args.copies)
        store = FeatureStore(Path(tmp) / "features.npz")
        start = time.perf_counter()
        _, full = store.update(split, fx)
        full_s = time.perf_counter() - start

        new = split / "sea" / "new-photo.jpg"
        buffer = io.BytesIO()
        ImageOps.flip(Image.open(next((split / "sea").glob("*.jpg")))).save(buffer, format="JPEG")
        new.write_bytes(buffer.getvalue())
        start = time.perf_counter()
        _, incremental = store.update(split, fx)
        incremental_s = time.perf_counter() - start

        start = time.perf_counter()
        store.update(split, fx)
        nothing_s = time.perf_counter() - start

    assert full.extracted == n and incremental.extracted == 1
    print(f"N = {n} images at 224x224, batch size {fx.batch_size}, device {fx.device}")
    print(f"  full extraction        {full_s:8.2f} s ({n / full_s:.1f} img/s)")
    print(
        f"  one new image          {incremental_s:8.3f} s = {100 * incremental_s / full_s:5.2f}% of full (target <= 3%)"
    )
    print(
        f"  nothing new            {nothing_s:8.3f} s = {100 * nothing_s / full_s:5.2f}% of full (hashing and the cache)"
    )


if __name__ == "__main__":
    main()
