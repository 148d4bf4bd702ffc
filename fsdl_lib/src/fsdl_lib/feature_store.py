"""An incremental, crash-safe cache of backbone features for one data split.

``FeatureStore(path).update(split_root, extractor)`` brings the cache in line with the files:

* files whose (path, label, content hash) are already cached keep their features;
* new or changed files are decoded and extracted, ``extractor.batch_size`` at a time;
* files that disappeared, or moved to another label, drop out;
* a file that does not decode is reported and skipped; the others go on;
* a cache written by another backbone is discarded, never mixed in.

The cache and the split may be on a folder or on the object store (:mod:`fsdl_lib.storage`). Every
write is whole (a folder's temporary file, fsync and rename; a store's single PUT), and long runs write
a checkpoint every ``checkpoint_seconds``: a killed run leaves the previous cache, or a newer
checkpoint, readable, and the next run resumes from it. A lock (a file lock, or a store's lease)
keeps two processes from updating one cache at once.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Final, Protocol

import numpy as np

from fsdl_lib import storage
from fsdl_lib._progress import Progress
from fsdl_lib.classes import SCENE_CLASSES
from fsdl_lib.dataset import FileRecord, dataset_version, scan_split
from fsdl_lib.exceptions import FeatureCacheError, InvalidImageError
from fsdl_lib.images import DEFAULT_MAX_PIXELS, decode_image

if TYPE_CHECKING:
    from PIL import Image

log = logging.getLogger(__name__)

CACHE_FORMAT: Final = 1


class Extractor(Protocol):
    """What the store needs of a feature extractor (``FeatureExtractor`` is one)."""

    id: str
    batch_size: int

    def extract(self, images: Sequence[Image.Image]) -> np.ndarray: ...


@dataclass(frozen=True)
class FeatureSet:
    """Features of a split: row ``i`` of :attr:`features` belongs to ``records[i]``."""

    records: tuple[FileRecord, ...]
    features: np.ndarray
    extractor_id: str

    def __len__(self) -> int:
        return len(self.records)

    @property
    def labels(self) -> np.ndarray:
        return np.array([record.label for record in self.records], dtype=str)

    @property
    def version(self) -> str:
        return dataset_version(self.records)


@dataclass(frozen=True)
class UpdateReport:
    """What one :meth:`FeatureStore.update` did."""

    version: str
    total: int
    extracted: int
    reused: int
    removed: int
    skipped: tuple[tuple[str, str], ...] = field(default=())

    def __str__(self) -> str:
        return (
            f"{self.total} images ({self.extracted} extracted, {self.reused} reused, "
            f"{self.removed} removed, {len(self.skipped)} skipped), dataset version {self.version[:12]}"
        )


class FeatureStore:
    """The feature cache of one split, stored in one ``.npz`` file (a folder's or a store's)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def exists(self) -> bool:
        return storage.exists(self.path)

    def load(self) -> FeatureSet:
        """Read the cache; raise :class:`FeatureCacheError` if it is missing or unreadable."""
        try:
            data = storage.read_bytes(self.path)
        except FileNotFoundError:
            raise FeatureCacheError(f"no feature cache at {self.path}") from None
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as npz:
                meta = json.loads(str(npz["meta"]))
                features = npz["features"]
                paths, labels, hashes = npz["paths"], npz["labels"], npz["sha256"]
        except Exception as exc:
            raise FeatureCacheError(f"feature cache {self.path} is unreadable ({exc})") from exc
        if meta.get("format") != CACHE_FORMAT:
            raise FeatureCacheError(f"feature cache {self.path} has unknown format {meta.get('format')!r}")
        n = len(paths)
        if features.ndim != 2 or features.shape[0] != n or len(labels) != n or len(hashes) != n:
            raise FeatureCacheError(f"feature cache {self.path} is inconsistent")
        records = tuple(
            FileRecord(str(p), str(label), str(h)) for p, label, h in zip(paths, labels, hashes, strict=True)
        )
        return FeatureSet(records, features.astype(np.float32, copy=False), str(meta["extractor_id"]))

    def save(self, feature_set: FeatureSet) -> None:
        """Write ``feature_set`` atomically."""
        records, features = feature_set.records, feature_set.features
        buffer = io.BytesIO()
        np.savez(
            buffer,
            meta=np.array(json.dumps({"format": CACHE_FORMAT, "extractor_id": feature_set.extractor_id})),
            features=np.asarray(features, dtype=np.float32),
            paths=np.array([r.path for r in records], dtype=str),
            labels=np.array([r.label for r in records], dtype=str),
            sha256=np.array([r.sha256 for r in records], dtype=str),
        )
        storage.write_bytes(self.path, buffer.getvalue())

    def pending(self, root: Path, extractor_id: str, *, classes: Sequence[str] = SCENE_CLASSES) -> list[FileRecord]:
        """The images under ``root/<class>/`` whose features the cache lacks (new or changed), in the
        order :meth:`update` would extract them: what a sharded extraction divides (:func:`extract`)."""
        _check_split(root)
        previous = self._previous(extractor_id)
        cached = set(previous.records) if previous else set()
        return [record for record in scan_split(root, classes) if record not in cached]

    def update(
        self,
        root: Path,
        extractor: Extractor,
        *,
        classes: Sequence[str] = SCENE_CLASSES,
        checkpoint_seconds: float = 60.0,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        prepared: Sequence[FeatureSet] = (),
    ) -> tuple[FeatureSet, UpdateReport]:
        """Bring the cache in line with the images under ``root/<class>/``; return it and a report.

        ``prepared`` holds features already extracted elsewhere (the shards of :func:`extract`): an
        image they cover, with the same content and backbone, is taken from them instead of being
        extracted again."""
        _check_split(root)
        with storage.locked(self.path.with_name(f".{self.path.name}.lock")) as lock:
            records = scan_split(root, classes)
            previous = self._previous(extractor.id)
            cached = {record: row for row, record in enumerate(previous.records)} if previous else {}
            keep = [record for record in records if record in cached]
            todo = [record for record in records if record not in cached]
            removed = len(cached) - len(keep)
            dim = previous.features.shape[1] if previous else 0
            kept_rows = previous.features[[cached[r] for r in keep]] if previous else np.empty((0, dim))
            ready = {
                record: (done.features, row)
                for done in prepared
                if done.extractor_id == extractor.id
                for row, record in enumerate(done.records)
            }
            from_shards = [record for record in todo if record in ready]
            todo = [record for record in todo if record not in ready]
            log.info(
                "%s: %d images, %d cached, %d extracted by shards, %d to extract, %d dropped",
                root, len(records), len(keep), len(from_shards), len(todo), removed,
            )  # fmt: skip

            new_records: list[FileRecord] = list(from_shards)
            new_rows: list[np.ndarray] = (
                [np.stack([ready[r][0][ready[r][1]] for r in from_shards])] if from_shards else []
            )
            skipped: list[tuple[str, str]] = []

            def current() -> FeatureSet:
                rows = [kept_rows, *new_rows] if len(kept_rows) else new_rows
                width = dim or (rows[0].shape[1] if rows else 0)
                stacked = np.concatenate(rows) if rows else np.empty((0, width), dtype=np.float32)
                unsorted = keep + new_records
                order = sorted(range(len(unsorted)), key=unsorted.__getitem__)
                return FeatureSet(
                    tuple(unsorted[i] for i in order),
                    stacked[order].astype(np.float32, copy=False),
                    extractor.id,
                )

            last_checkpoint = time.monotonic()
            done = 0
            for batch in _extracted_batches(root, todo, extractor, max_pixels, f"extracting {root.name}"):
                if batch.rows is not None:
                    new_rows.append(batch.rows)
                    new_records.extend(batch.records)
                skipped.extend(batch.skipped)
                done += batch.size
                lock.renew()
                if time.monotonic() - last_checkpoint >= checkpoint_seconds and done < len(todo):
                    self.save(current())
                    last_checkpoint = time.monotonic()
                    log.info("checkpoint written: %d of %d new images", len(new_records), len(todo))

            result = current()
            if todo or from_shards or removed or previous is None:
                self.save(result)
            report = UpdateReport(
                version=result.version,
                total=len(result),
                extracted=len(new_records),
                reused=len(keep),
                removed=removed,
                skipped=tuple(skipped),
            )
            log.info("%s: %s", self.path.name, report)
            return result, report

    def _previous(self, extractor_id: str) -> FeatureSet | None:
        if not self.exists():
            return None
        try:
            previous = self.load()
        except FeatureCacheError as exc:
            log.warning("%s; rebuilding it from the images", exc)
            return None
        if previous.extractor_id != extractor_id:
            log.warning(
                "feature cache %s was built by %s, not %s; rebuilding it",
                self.path,
                previous.extractor_id,
                extractor_id,
            )
            return None
        return previous


def _check_split(root: Path) -> None:
    with storage.storage_errors(root, "listing"):
        if not root.is_dir():
            raise FileNotFoundError(f"split folder {root} does not exist")


@dataclass(frozen=True)
class _Batch:
    size: int
    records: list[FileRecord]
    rows: np.ndarray | None
    skipped: list[tuple[str, str]]


def _extracted_batches(
    root: Path, records: Sequence[FileRecord], extractor: Extractor, max_pixels: int, what: str
) -> Iterator[_Batch]:
    """The features of ``records`` (files under ``root``), ``extractor.batch_size`` at a time, with a
    progress bar. The next batch is read while this one is extracted: on an object store the reads
    wait on the network, and would otherwise add up to the whole extraction."""
    size = extractor.batch_size
    batches = [records[start : start + size] for start in range(0, len(records), size)]
    with (
        Progress(len(records), what, logger=log) as progress,
        ThreadPoolExecutor(1, thread_name_prefix="fsdl-read-ahead") as reader,
    ):
        reading = [reader.submit(storage.read_many, root, [r.path for r in batch]) for batch in batches[:1]]
        for index, batch in enumerate(batches):
            contents = reading.pop().result()
            if index + 1 < len(batches):
                reading.append(reader.submit(storage.read_many, root, [r.path for r in batches[index + 1]]))
            images, decoded, skipped = [], [], []
            for record, data in zip(batch, contents.values(), strict=True):
                try:
                    if isinstance(data, OSError):
                        raise InvalidImageError(f"cannot read file ({data.strerror or data})")
                    images.append(decode_image(data, max_pixels=max_pixels, name=record.path)[0])
                    decoded.append(record)
                except InvalidImageError as exc:
                    log.warning("skipping %s: %s", record.path, exc.reason)
                    skipped.append((record.path, exc.reason))
            rows = extractor.extract(images) if images else None
            progress.update(len(batch))
            yield _Batch(len(batch), decoded, rows, skipped)


def shard_path(folder: Path, extractor_id: str, records: Sequence[FileRecord]) -> Path:
    """Where the shard of ``records`` extracted by ``extractor_id`` is kept under ``folder``: named by
    its content, so a retried shard finds its own work, and two different shards never meet."""
    key = hashlib.sha256(
        json.dumps([extractor_id, [[r.path, r.label, r.sha256] for r in records]]).encode()
    ).hexdigest()
    return folder / f"shard-{key[:24]}.npz"


def extract(
    root: Path, records: Sequence[FileRecord], extractor: Extractor, folder: Path, *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> tuple[Path, FeatureSet, tuple[tuple[str, str], ...]]:  # fmt: skip
    """One shard of a sharded extraction: the features of ``records`` (files under ``root``), kept
    whole at :func:`shard_path` under ``folder`` for :meth:`FeatureStore.update` to take in. Batches
    are formed as :meth:`FeatureStore.update` forms them, so shards cut at a multiple of the batch size
    give the very features one update would. A shard already there is not extracted again. Returns
    its path, its features and the images that did not decode."""
    path = shard_path(folder, extractor.id, records)
    if storage.exists(path):
        try:
            done = FeatureStore(path).load()
        except FeatureCacheError as exc:
            log.warning("%s; extracting the shard again", exc)
        else:
            if done.extractor_id == extractor.id and set(done.records) <= set(records):
                log.info("%s: extracted before (%d images)", path.name, len(done))
                return path, done, ()
    found: list[FileRecord] = []
    rows: list[np.ndarray] = []
    skipped: list[tuple[str, str]] = []
    for batch in _extracted_batches(root, records, extractor, max_pixels, f"extracting a shard of {root.name}"):
        if batch.rows is not None:
            rows.append(batch.rows)
            found.extend(batch.records)
        skipped.extend(batch.skipped)
    features = np.concatenate(rows) if rows else np.empty((0, 0), dtype=np.float32)
    result = FeatureSet(tuple(found), features.astype(np.float32, copy=False), extractor.id)
    FeatureStore(path).save(result)
    return path, result, tuple(skipped)
