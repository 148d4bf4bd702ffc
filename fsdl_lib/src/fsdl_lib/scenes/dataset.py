"""The scene dataset: both splits' features brought up to date, and one version over them."""

from __future__ import annotations

import logging
import math
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
from fsdl_lib.graph_store import GraphRef

if TYPE_CHECKING:
    from fsdl_lib.config import Settings
    from fsdl_lib.feature_store import Extractor

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
    graph: GraphRef | None = None
    """The exported backbone graph serving will run on these features (None: no graph was prepared)."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "backbone_id": str(self.backbone),
            "dataset_version": self.version,
            "splits": {
                name: {**asdict(split), "cache": str(split.cache), "skipped": list(split.skipped)}
                for name, split in self.splits.items()
            },
            "graph": self.graph.as_dict() if self.graph else None,
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
        graph = GraphRef.from_dict(data["graph"]) if data.get("graph") else None
        return cls(BackboneId.parse(data["backbone_id"]), data["dataset_version"], splits, graph)

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


SHARD_UNIT: Final = 64
"""Shards are cut at multiples of this many images: of every batch size the extractor picks by itself
(8 on a CPU, 64 on a GPU), so a shard's batches are those one extraction would form."""


def shards_folder(settings: Settings) -> Path:
    """Where the shards of a sharded extraction wait to be taken into the caches (``scratch/``: the one
    part of the data that the workers may delete)."""
    return storage.scratch_folder(settings.data_root, "intel_scenes/features")


def plan_extraction(settings: Settings) -> list[dict[str, Any]]:
    """The images whose features the caches lack, cut into shards of ``FSDL_EXTRACT_SHARD_SIZE``
    (rounded up to whole batches); each shard is ``{"split", "records"}``, for :func:`extract_shard`."""
    from fsdl_lib.features import BackboneId

    backbone = str(BackboneId.of(
        offline_weights=settings.offline_weights, seed=settings.weights_seed, image_size=settings.image_size
    ))  # fmt: skip
    unit = math.lcm(settings.batch_size, SHARD_UNIT) if settings.batch_size else SHARD_UNIT
    size = max(1, math.ceil(settings.extract_shard_size / unit)) * unit
    shards = []
    for split in SPLITS:
        todo = FeatureStore(feature_cache(settings, split)).pending(settings.scenes_raw_dir / split, backbone)
        shards += [
            {"split": split, "records": [[r.path, r.label, r.sha256] for r in todo[start : start + size]]}
            for start in range(0, len(todo), size)
        ]
    log.info("%d shards of up to %d images to extract (backbone %s)", len(shards), size, backbone)
    return shards


def extractor_for(settings: Settings, graph: GraphRef | None) -> Extractor:
    """The engine that extracts fastest here: on a CPU, ONNX Runtime running ``graph`` (the very file
    serving runs); on a GPU, or without a graph, the eager torch extractor (the reference)."""
    if graph is not None:
        from fsdl_lib.features import resolve_device

        if resolve_device(settings.device).type != "cuda":
            from fsdl_lib.graph import GraphExtractor

            return GraphExtractor(
                graph.location, expected_id=graph.backbone_id, expected_sha256=graph.sha256,
                batch_size=settings.batch_size,
            )  # fmt: skip
    from fsdl_lib.features import FeatureExtractor  # torch: imported by the task that extracts, not on import

    return FeatureExtractor.from_settings(settings)


def extract_shard(settings: Settings, shard: Mapping[str, Any], graph: GraphRef | None = None) -> dict[str, Any]:
    """Extract one shard of :func:`plan_extraction` into :func:`shards_folder`; say where it is."""
    from fsdl_lib.feature_store import extract

    split = shard["split"]
    if split not in SPLITS:
        raise FsdlError(f"a shard of split {split!r}: the splits are {', '.join(SPLITS)}")
    records = [FileRecord(*record) for record in shard["records"]]
    extractor = extractor_for(settings, graph)
    path, features, skipped = extract(
        settings.scenes_raw_dir / split, records, extractor, shards_folder(settings),
        max_pixels=settings.max_image_pixels,
    )  # fmt: skip
    return {"split": split, "path": str(path), "images": len(features), "skipped": [list(s) for s in skipped]}


def create_dataset(
    settings: Settings, shards: Sequence[Mapping[str, Any]] = (), graph: GraphRef | None = None
) -> SceneDataset:
    """Update the feature caches of both splits and describe them for the training tasks. The
    features of ``shards`` (what :func:`extract_shard` returned) are taken in rather than extracted
    again; their files are removed once the caches hold them. What is left to extract is extracted
    with :func:`extractor_for` ``graph``."""
    extractor = extractor_for(settings, graph)
    backbone = BackboneId.parse(extractor.id)
    splits: dict[str, SplitSummary] = {}
    records: dict[str, Sequence[FileRecord]] = {}
    for split in SPLITS:
        root = settings.scenes_raw_dir / split
        cache = feature_cache(settings, split)
        # A retry after the shards were taken in finds them gone, and their features in the cache.
        paths = [storage.location(shard["path"]) for shard in shards if shard["split"] == split]
        prepared = [FeatureStore(path).load() for path in paths if storage.exists(path)]
        features, report = FeatureStore(cache).update(
            root, extractor, max_pixels=settings.max_image_pixels, prepared=prepared
        )
        for path in paths:
            storage.delete(path)
        if len(features) == 0:
            raise FsdlError(f"no usable images under {root}/<class>/; run `fsdl seed` or download the data")
        missing = sorted(set(SCENE_CLASSES) - set(features.labels))
        if split == "train" and missing:
            raise FsdlError(f"the training split has no images of {missing}; every class needs some")
        records[split] = features.records
        splits[split] = SplitSummary(
            cache, report.version, report.total, report.extracted, tuple(path for path, _ in report.skipped)
        )
    dataset = SceneDataset(backbone, combined_version(records), splits, graph)
    log.info("dataset version %s (backbone %s)", dataset.version, dataset.backbone)
    return dataset


def combined_version(splits: Mapping[str, Sequence[FileRecord]]) -> str:
    """One version over several splits: each record's path is prefixed with its split."""
    return dataset_version(
        FileRecord(f"{split}/{r.path}", r.label, r.sha256) for split, records in splits.items() for r in records
    )
