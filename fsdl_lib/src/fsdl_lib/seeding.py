"""Seeding the scene dataset from the sample photos when no real data is present."""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from fsdl_lib.classes import SCENE_CLASSES
from fsdl_lib.dataset import IMAGE_SUFFIXES, file_sha256

log = logging.getLogger(__name__)

MARKER: Final = "SEEDED_FROM_SAMPLE"
"""File left in the dataset root when the splits were seeded from the sample."""


@dataclass(frozen=True)
class SeedResult:
    seeded: bool
    train: int = 0
    test: int = 0
    reason: str = ""


def has_images(split: Path) -> bool:
    return any(
        path.suffix.lower() in IMAGE_SUFFIXES
        for label in SCENE_CLASSES
        if (split / label).is_dir()
        for path in (split / label).iterdir()
    )


def seed_scenes(sample_dir: Path, dataset_dir: Path, *, test_per_class: int = 5) -> SeedResult:
    """Copy the sample into ``dataset_dir/{train,test}/<class>/`` unless real data is there.

    Each class's photos are ordered by content hash, so the split is the same on every machine:
    the first ``test_per_class`` go to test, the rest to train. Safe to run again.
    """
    train = dataset_dir / "train"
    if has_images(train):
        return SeedResult(False, reason=f"{train} already holds images")
    if not sample_dir.is_dir():
        raise FileNotFoundError(f"sample photos not found at {sample_dir}")
    counts = {"train": 0, "test": 0}
    for label in SCENE_CLASSES:
        photos = sorted(
            (p for p in (sample_dir / label).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES),
            key=file_sha256,
        )
        for index, photo in enumerate(photos):
            split = "test" if index < test_per_class else "train"
            target = dataset_dir / split / label / photo.name
            seed_file(photo, target)  # beside the target, then renamed: never half a photo
            counts[split] += 1
    (dataset_dir / MARKER).write_text(
        f"train and test were seeded from {sample_dir} (no real dataset was present).\n"
        "Run scripts/download_intel_scenes.py to replace them with the Kaggle dataset.\n"
    )
    return SeedResult(True, counts["train"], counts["test"])


def seed_file(source: Path, target: Path) -> bool:
    """Copy ``source`` to ``target`` unless it exists (atomically); True if it copied."""
    if target.exists():
        return False
    if not source.is_file():
        raise FileNotFoundError(f"{source} not found")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial")
    shutil.copyfile(source, partial)
    partial.replace(target)
    return True
