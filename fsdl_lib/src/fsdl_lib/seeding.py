"""Seeding the scene dataset from the sample photos when no real data is present."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Final

from fsdl_lib import storage
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
    """Whether ``split`` (a folder or a bucket prefix) holds an image in a class folder."""
    return any(
        PurePosixPath(relative).suffix.lower() in IMAGE_SUFFIXES
        and PurePosixPath(relative).parent.name in SCENE_CLASSES
        for relative in storage.files(split)
    )


def seed_scenes(sample_dir: Path, dataset_dir: Path, *, test_per_class: int = 5) -> SeedResult:
    """Copy the sample into ``dataset_dir/{train,test}/<class>/`` (a folder or a bucket prefix)
    unless real data is there.

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
            seed_file(photo, target)  # whole or not at all: never half a photo
            counts[split] += 1
    storage.write_bytes(
        dataset_dir / MARKER,
        f"train and test were seeded from {sample_dir} (no real dataset was present).\n"
        "Run scripts/download_intel_scenes.py to replace them with the Kaggle dataset.\n".encode(),
    )
    return SeedResult(True, counts["train"], counts["test"])


def seed_file(source: Path, target: Path) -> bool:
    """Copy the local file ``source`` to ``target`` (a folder's or a store's) unless something is
    there; True if it copied. Whole or not at all (:func:`fsdl_lib.storage.create`)."""
    if not source.is_file():
        raise FileNotFoundError(f"{source} not found")
    return storage.create(target, source.read_bytes())
