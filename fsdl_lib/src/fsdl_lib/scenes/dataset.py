"""The scene dataset: both splits' features brought up to date, and one version over them."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from fsdl_lib import storage
from fsdl_lib.classes import SCENE_CLASSES
from fsdl_lib.dataset import FileRecord, dataset_version
from fsdl_lib.exceptions import FsdlError
from fsdl_lib.feature_store import FeatureSet, FeatureStore
from fsdl_lib.features import BackboneId

if TYPE_CHECKING:
    from fsdl_lib.config import Settings

log = logging.getLogger(__name__)

SPLITS: Final = ("train", "test")


def feature_cache(settings: Settings, split: str) -> Path:
    return settings.processed_dir / "intel_scenes" / f"features_{split}.npz"


@dataclass(frozen=True)
class SplitSummary:
    """One split's feature cache as :func:`create_dataset` left it."""

    cache: Path
    version: str
    images: int
    extracted: int
    skipped: tuple[str, ...] = ()


@dataclass(frozen=True)
class SceneDataset:
    """What :func:`create_dataset` hands the training tasks: which backbone's features of which
    images. Small, so it travels between tasks as its :meth:`as_dict` form."""

    backbone: BackboneId
    version: str
    """One version over both splits (:func:`combined_version`)."""
    splits: Mapping[str, SplitSummary]

    def as_dict(self) -> dict[str, Any]:
        return {
            "backbone_id": str(self.backbone),
            "dataset_version": self.version,
            "splits": {
                name: {**asdict(split), "cache": str(split.cache), "skipped": list(split.skipped)}
                for name, split in self.splits.items()
            },
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SceneDataset:
        splits = {
            name: SplitSummary(
                storage.location(split["cache"]),
                split["version"],
                int(split["images"]),
                int(split["extracted"]),
                tuple(split.get("skipped", ())),
            )
            for name, split in data["splits"].items()
        }
        return cls(BackboneId.parse(data["backbone_id"]), data["dataset_version"], splits)

    def load(self, split: str) -> FeatureSet:
        """The split's cached features, checked to be the ones this description was made from."""
        summary = self.splits[split]
        features = FeatureStore(summary.cache).load()
        if features.extractor_id != str(self.backbone) or features.version != summary.version:
            raise FsdlError(
                f"the {split} feature cache changed since create_dataset ran (another run updated it); "
                "clear the task to extract again"
            )
        return features


def create_dataset(settings: Settings) -> SceneDataset:
    """Update the feature caches of both splits and describe them for the training tasks."""
    from fsdl_lib.features import FeatureExtractor  # torch: imported by the task that extracts, not on import

    extractor = FeatureExtractor.from_settings(settings)
    splits: dict[str, SplitSummary] = {}
    records: dict[str, Sequence[FileRecord]] = {}
    for split in SPLITS:
        root = settings.scenes_raw_dir / split
        cache = feature_cache(settings, split)
        features, report = FeatureStore(cache).update(root, extractor, max_pixels=settings.max_image_pixels)
        if len(features) == 0:
            raise FsdlError(f"no usable images under {root}/<class>/; run `fsdl seed` or download the data")
        missing = sorted(set(SCENE_CLASSES) - set(features.labels))
        if split == "train" and missing:
            raise FsdlError(f"the training split has no images of {missing}; every class needs some")
        records[split] = features.records
        splits[split] = SplitSummary(
            cache, report.version, report.total, report.extracted, tuple(path for path, _ in report.skipped)
        )
    dataset = SceneDataset(extractor.backbone, combined_version(records), splits)
    log.info("dataset version %s (backbone %s)", dataset.version, dataset.backbone)
    return dataset


def combined_version(splits: Mapping[str, Sequence[FileRecord]]) -> str:
    """One version over several splits: each record's path is prefixed with its split."""
    return dataset_version(
        FileRecord(f"{split}/{r.path}", r.label, r.sha256) for split, records in splits.items() for r in records
    )
