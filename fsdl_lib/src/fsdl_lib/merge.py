"""Merging accepted feedback into the scene training split.

The web app writes each accepted answer to ``feedback/<class>/<sha256>.<ext>`` (its database is the
source of truth for labels: a rejected answer leaves no file). :func:`merge_feedback`, run by the
``feedback_sync`` DAG, moves those files into ``train/<class>/<sha256>.<ext>``, on a folder or on
the object store alike (:mod:`fsdl_lib.storage`):

- only regular files with an image suffix are read; symlinks, folders, FIFOs and the rest are
  reported and skipped, and nothing is ever followed or written through a name found on disk;
- bytes already in the test split are refused (they would leak the test set into training);
- the same bytes claimed for two classes, in the feedback or against the training split, are a
  *conflict*: reported and left for a person, never resolved by file-name order;
- nothing is overwritten: a photo is created in the split only where nothing is (a link of a
  finished temporary file, or a conditional PUT), and a name already holding other bytes stops the
  merge with the photo left in the feedback;
- the manifest is written first: each decision is its own row file, created before the move it
  describes (``<manifests>/<run_id>/<class>.<sha256>.csv``), then the photo is created in the
  split, then the feedback file removed. Killed anywhere and run again with the same run id, the
  merge reads the rows back, finishes what they started, and so loses nothing and counts nothing
  twice. ``<manifests>/<run_id>.csv`` gathers the rows when the run ends;
- one merge at a time (a file lock, or a lease on the store, beside the manifests).
"""

from __future__ import annotations

import csv
import errno
import hashlib
import io
import logging
import os
import re
import stat
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Final

from fsdl_lib import storage
from fsdl_lib.classes import SCENE_CLASSES
from fsdl_lib.dataset import IMAGE_SUFFIXES, scan_split
from fsdl_lib.exceptions import FsdlError

if TYPE_CHECKING:
    from fsdl_lib.config import Settings

log = logging.getLogger(__name__)

MANIFEST_FIELDS: Final = ("status", "label", "sha256", "source", "target")
MERGED, DUPLICATE, CONFLICT, IN_TEST = "merged", "duplicate", "conflict", "in_test"
LOCK_TIMEOUT_SECONDS: Final = 600.0


@dataclass(frozen=True)
class MergeReport:
    """What one merge run did. ``merged`` counts the whole run, earlier killed attempts included."""

    run_id: str
    manifest: Path
    merged: int
    duplicates: int = 0
    conflicts: int = 0
    in_test: int = 0
    skipped: tuple[str, ...] = field(default=())
    """``<path>: <reason>`` of each entry that is not a regular image file."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "manifest": str(self.manifest),
            "merged": self.merged,
            "duplicates": self.duplicates,
            "conflicts": self.conflicts,
            "in_test": self.in_test,
            "skipped": list(self.skipped),
        }


@dataclass(frozen=True)
class _Candidate:
    label: str
    source: Path
    sha256: str
    data: bytes

    @property
    def target_name(self) -> str:
        return f"{self.sha256}{self.source.suffix.lower()}"

    @property
    def relative(self) -> str:
        return f"{self.label}/{self.source.name}"


def merge_feedback(settings: Settings, run_id: str, *, step: Callable[[str], None] | None = None) -> MergeReport:
    """Merge ``settings.scenes_feedback_dir`` into the training split; see the module's docstring.

    ``run_id`` names the manifest (``<raw>/feedback_merges/<run_id>.csv``, its rows beside it in
    ``<run_id>/``): a retry of the same run continues it. ``step`` is called after each durable step
    of a move, ``manifest``, ``copied`` and ``removed`` (tests kill the process there).
    """
    return _Merge(
        feedback=settings.scenes_feedback_dir,
        train=settings.scenes_raw_dir / "train",
        test=settings.scenes_raw_dir / "test",
        manifests=settings.scenes_raw_dir / "feedback_merges",
        run_id=run_id,
        step=step or (lambda name: None),
    ).run()


def safe_run_id(run_id: str) -> str:
    """``run_id`` as a file name: characters other than letters, digits, ``_.-`` become ``_``."""
    cleaned = re.sub(r"[^A-Za-z0-9_.-]", "_", run_id).lstrip(".")
    if not cleaned:
        raise ValueError(f"run id {run_id!r} gives an empty file name")
    return cleaned


@dataclass
class _Merge:
    feedback: Path
    train: Path
    test: Path
    manifests: Path
    run_id: str
    step: Callable[[str], None]
    classes: Sequence[str] = SCENE_CLASSES

    def run(self) -> MergeReport:
        run_id = safe_run_id(self.run_id)
        storage.makedirs(self.manifests)
        with storage.locked(self.manifests / ".lock", timeout=LOCK_TIMEOUT_SECONDS) as lock:
            if not storage.is_object_store(self.train):
                for label in self.classes:
                    (self.train / label).mkdir(parents=True, exist_ok=True)
                    (self.feedback / label).mkdir(parents=True, exist_ok=True)
                self._remove_leftovers()
            train = {record.sha256: record.label for record in scan_split(self.train, self.classes)}
            in_test = {record.sha256 for record in scan_split(self.test, self.classes)}
            log.info("training split holds %d distinct images; test split %d", len(train), len(in_test))
            rows = self.manifests / run_id
            done = _read_rows(rows)
            candidates, skipped = self._candidates()
            labels_of: dict[str, set[str]] = defaultdict(set)
            for candidate in candidates:
                labels_of[candidate.sha256].add(candidate.label)
            counts: dict[str, int] = defaultdict(int)
            for candidate in candidates:
                status = self._merge_one(candidate, train, in_test, labels_of, done, rows)
                counts[status] += 1
                lock.renew()
            done = _read_rows(rows)
            manifest = self.manifests / f"{run_id}.csv"
            storage.write_bytes(manifest, _manifest_csv(done))
        report = MergeReport(
            run_id=run_id,
            manifest=manifest,
            merged=sum(1 for status, _, _ in done.values() if status == MERGED),
            duplicates=counts[DUPLICATE],
            conflicts=counts[CONFLICT],
            in_test=counts[IN_TEST],
            skipped=tuple(skipped),
        )
        log.info(
            "merged %d images into %s (%d duplicates, %d conflicts, %d refused as test images, %d skipped); "
            "manifest %s",
            report.merged, self.train, report.duplicates, report.conflicts, report.in_test, len(skipped), manifest,
        )  # fmt: skip
        for entry in skipped:
            log.warning("skipped %s", entry)
        return report

    def _merge_one(
        self,
        candidate: _Candidate,
        train: dict[str, str],
        in_test: set[str],
        labels_of: dict[str, set[str]],
        done: dict[tuple[str, str], tuple[str, str, str]],
        rows: Path,
    ) -> str:
        label, sha = candidate.label, candidate.sha256
        target = f"{label}/{candidate.target_name}"
        source = candidate.relative

        def write(status: str, target: str = "") -> None:
            _write_row(rows, (status, label, sha, source, target))

        if done.get((sha, label), ("",))[0] == MERGED:
            # An earlier attempt of this run logged the move and was killed: finish it, count it once.
            if train.get(sha) != label:
                self._copy(candidate)
                train[sha] = label
            storage.delete(candidate.source)
            return "finished"
        if sha in in_test:
            write(IN_TEST)
            storage.delete(candidate.source)
            log.warning("refused %s: the same image is in the test split", source)
            return IN_TEST
        if len(labels_of[sha]) > 1 or (sha in train and train[sha] != label):
            claims = sorted(labels_of[sha] | ({train[sha]} if sha in train else set()))
            write(CONFLICT, f"train:{train[sha]}" if sha in train else "")
            log.warning("conflict: %s is claimed as %s; left in place for a person to decide", source, claims)
            return CONFLICT
        if sha in train:
            write(DUPLICATE)
            storage.delete(candidate.source)
            return DUPLICATE
        write(MERGED, target)
        self.step("manifest")
        self._copy(candidate)
        train[sha] = label
        self.step("copied")
        storage.delete(candidate.source)
        self.step("removed")
        log.info("merged %s", target)
        return "new"

    def _copy(self, candidate: _Candidate) -> None:
        """Create the photo in the split where nothing is; a name holding other bytes stops the merge."""
        target = self.train / candidate.label / candidate.target_name
        if storage.create(target, candidate.data):
            return
        if hashlib.sha256(storage.read_bytes(target)).hexdigest() != candidate.sha256:
            raise FsdlError(
                f"{storage.describe(target)} already holds other bytes than {candidate.relative}; it is left "
                "as it is and the photo stays in the feedback: a person must look at both"
            )

    def _candidates(self) -> tuple[list[_Candidate], list[str]]:
        candidates, skipped = [], []
        for label in self.classes:
            folder = self.feedback / label
            found = self._folder_entries(folder) if not storage.is_object_store(folder) else self._store_entries(folder)
            for name, data in found:
                relative = f"{label}/{name}"
                if isinstance(data, str):
                    skipped.append(f"{relative}: {data}")
                    continue
                candidates.append(_Candidate(label, folder / name, hashlib.sha256(data).hexdigest(), data))
        return candidates, skipped

    @staticmethod
    def _folder_entries(folder: Path) -> list[tuple[str, bytes | str]]:
        """(name, bytes or why it is skipped) of each entry of a local feedback folder, by name."""
        found: list[tuple[str, bytes | str]] = []
        for entry in sorted(os.scandir(folder), key=lambda e: e.name):
            if entry.name.startswith("."):
                continue
            kind = _kind(entry.stat(follow_symlinks=False).st_mode)
            if kind != "file":
                found.append((entry.name, f"a {kind}, not a regular file"))
            elif Path(entry.name).suffix.lower() not in IMAGE_SUFFIXES:
                found.append((entry.name, _NOT_AN_IMAGE))
            else:
                data = _read_regular(Path(entry.path))
                found.append(
                    (
                        entry.name,
                        data if data is not None else "replaced by something other than a regular file while read",
                    )
                )
        return found

    @staticmethod
    def _store_entries(folder: Path) -> list[tuple[str, bytes | str]]:
        """The same for a prefix of the object store, which holds nothing but objects."""
        names = sorted(storage.files(folder))
        images = [name for name in names if "/" not in name and PurePosixPath(name).suffix.lower() in IMAGE_SUFFIXES]
        found: list[tuple[str, bytes | str]] = [
            (name, "a folder, not a regular file" if "/" in name else _NOT_AN_IMAGE)
            for name in names
            if name not in images
        ]
        for start in range(0, len(images), 32):
            for name, data in storage.read_many(folder, images[start : start + 32]).items():
                if not isinstance(data, OSError):  # one gone since the listing: nothing to merge
                    found.append((name, data))
        return sorted(found, key=lambda item: item[0])

    def _remove_leftovers(self) -> None:
        """Temporary files of a folder's copy killed before its link: incomplete, never referenced."""
        for label in self.classes:
            for entry in os.scandir(self.train / label):
                if _TEMPORARY.fullmatch(entry.name) and not entry.is_dir(follow_symlinks=False):
                    os.unlink(entry.path)  # a link is removed itself, never followed


_NOT_AN_IMAGE: Final = f"not a {'/'.join(sorted(IMAGE_SUFFIXES))} file"
_TEMPORARY: Final = re.compile(r"\..+\.tmp")
"""The names :func:`fsdl_lib.atomic.atomic_writer` gives its temporary files."""


def _kind(mode: int) -> str:
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISLNK(mode):
        return "symlink"
    if stat.S_ISDIR(mode):
        return "directory"
    if stat.S_ISFIFO(mode):
        return "FIFO"
    return "special file"


def _read_regular(path: Path) -> bytes | None:
    """The bytes of ``path`` if it is still a regular file when opened (never through a link)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOENT, errno.ENXIO):
            return None
        raise
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            return None
        return handle.read()


def _row_name(label: str, sha256: str) -> str:
    return f"{label}.{sha256}.csv"


def _write_row(rows: Path, row: Sequence[str]) -> None:
    """One decision of the run, as its own file: whole, durable, and never written twice."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(row)
    storage.create(rows / _row_name(row[1], row[2]), buffer.getvalue().encode())


def _read_rows(rows: Path) -> dict[tuple[str, str], tuple[str, str, str]]:
    """(sha256, label) → (status, source, target) of each decision an attempt of this run recorded."""
    names = sorted(storage.files(rows))
    found: dict[tuple[str, str], tuple[str, str, str]] = {}
    for start in range(0, len(names), 32):
        for data in storage.read_many(rows, names[start : start + 32]).values():
            if isinstance(data, OSError):
                raise data
            for status, label, sha, source, target in csv.reader(io.StringIO(data.decode())):
                found[(sha, label)] = (status, source, target)
    return found


def _manifest_csv(done: dict[tuple[str, str], tuple[str, str, str]]) -> bytes:
    """Every row of the run, by label and hash, with a header: the manifest people read."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(MANIFEST_FIELDS)
    for (sha, label), (status, source, target) in sorted(done.items(), key=lambda item: (item[0][1], item[0][0])):
        writer.writerow((status, label, sha, source, target))
    return buffer.getvalue().encode()
