"""Datasets as files: scanning an image split, the version of any dataset, and its manifest.

An image split is a folder (or a bucket prefix: :mod:`fsdl_lib.storage`) of ``<class>/<image>``
files; the wine dataset is its train and test CSV files. A dataset's *version* is the sha256 over
the sorted (relative path, label, sha256 of the bytes) of its files, so the same files give the same
version on any machine, in any process and from any store, and one changed byte, label or name gives
a new one. Both workloads use :func:`dataset_version`.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from fsdl_lib import storage
from fsdl_lib.classes import SCENE_CLASSES
from fsdl_lib.exceptions import StorageError

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png"})
MANIFEST_FIELDS = ("path", "label", "sha256")
_CHUNK = 1 << 20


@dataclass(frozen=True, order=True)
class FileRecord:
    """One file of a dataset: its path relative to the dataset's root (POSIX), its label (an image's
    class, a table's role such as ``train``) and the sha256 of its bytes."""

    path: str
    label: str
    sha256: str


def file_sha256(path: Path) -> str:
    """The sha256 of the file's bytes, read in chunks (a folder's file or a store's object)."""
    digest = hashlib.sha256()
    with storage.storage_errors(path, "reading"), path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def scan_split(root: Path, classes: Sequence[str] = SCENE_CLASSES) -> list[FileRecord]:
    """Records of every image file under ``root/<class>/``, sorted by path.

    Only the named class folders are read; hidden files and other suffixes are ignored. Whether a
    file really decodes is checked later, when its features are extracted.

    On an object store, reading every photo to hash it costs a request each, so the hashes are kept
    in a hidden object beside the split (:data:`SHA256_CACHE`), each with the ETag and size of the
    object it was read from: a photo is read again only when its listing says it changed.
    """
    listing = storage.files(root)  # one listing, from a folder or a bucket alike
    on_store = storage.is_object_store(root)
    cached = _read_sha256_cache(root) if on_store else {}
    wanted = {
        relative: stored
        for relative, stored in listing.items()
        if PurePosixPath(relative).parent.as_posix() in classes
        and PurePosixPath(relative).suffix.lower() in IMAGE_SUFFIXES
    }
    known = {
        relative: cached[relative][2]
        for relative, stored in wanted.items()
        if stored.etag and cached.get(relative, [None])[:2] == [stored.etag, stored.size]
    }
    known.update(storage.sha256s(root, [relative for relative in wanted if relative not in known]))
    if on_store:
        entries = {relative: [wanted[relative].etag, wanted[relative].size, sha] for relative, sha in known.items()}
        if entries != cached:
            _write_sha256_cache(root, entries)
    return sorted(FileRecord(path, PurePosixPath(path).parent.as_posix(), sha) for path, sha in known.items())


SHA256_CACHE = ".sha256-cache.json"
"""The hashes of a split on an object store: path → [ETag, size, sha256]."""


def _read_sha256_cache(root: Path) -> dict[str, list]:
    try:
        cache = json.loads(storage.read_bytes(root / SHA256_CACHE))
    except (FileNotFoundError, ValueError):
        return {}
    if not isinstance(cache, dict):
        return {}
    return {  # entries of another shape are not trusted: those photos are read again
        path: entry
        for path, entry in cache.items()
        if isinstance(entry, list) and len(entry) == 3 and isinstance(entry[2], str) and len(entry[2]) == 64
    }


def _write_sha256_cache(root: Path, entries: dict[str, list]) -> None:
    try:
        storage.write_bytes(root / SHA256_CACHE, json.dumps(entries, sort_keys=True).encode())
    except StorageError as exc:  # an identity that may only read: the next scan reads the photos again
        log.warning("the hashes of %s are not kept (%s)", root, exc)


def dataset_version(records: Iterable[FileRecord]) -> str:
    """sha256 over the sorted (path, label, sha256) triples; independent of input order."""
    digest = hashlib.sha256()
    for record in sorted(records):
        # One JSON array a line: unambiguous whatever characters a file name holds.
        line = json.dumps([record.path, record.label, record.sha256], ensure_ascii=True)
        digest.update(line.encode("ascii") + b"\n")
    return digest.hexdigest()


def manifest_csv(records: Iterable[FileRecord]) -> str:
    """The records as CSV text with a header (``path,label,sha256``), sorted by path."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(MANIFEST_FIELDS)
    for record in sorted(records):
        writer.writerow([record.path, record.label, record.sha256])
    return buffer.getvalue()


def parse_manifest(text: str) -> list[FileRecord]:
    """Inverse of :func:`manifest_csv`."""
    reader = csv.DictReader(io.StringIO(text))
    if tuple(reader.fieldnames or ()) != MANIFEST_FIELDS:
        raise ValueError(f"manifest header must be {','.join(MANIFEST_FIELDS)}")
    return [FileRecord(row["path"], row["label"], row["sha256"]) for row in reader]
