"""Merging accepted feedback into the scene training split.

The web app writes each accepted answer to ``feedback/<class>/<sha256>.<ext>`` (its database is the
source of truth for labels: a rejected answer leaves no file). :func:`merge_feedback`, run by the
``feedback_sync`` DAG, moves those files into ``train/<class>/<sha256>.<ext>``:

- only regular files with an image suffix are read; symlinks, folders, FIFOs and the rest are
  reported and skipped, and nothing is ever followed or written through a name found on disk;
- bytes already in the test split are refused (they would leak the test set into training);
- the same bytes claimed for two classes, in the feedback or against the training split, are a
  *conflict*: reported and left for a person, never resolved by file-name order;
- each move is written to the run's manifest first, then copied to a fresh temporary name, synced
  and renamed, then the source is removed: killed anywhere and run again with the same run id,
  it loses nothing and counts nothing twice;
- one merge at a time (a lock beside the manifests).
"""

from __future__ import annotations

import contextlib
import csv
import errno
import fcntl
import hashlib
import logging
import os
import re
import stat
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TextIO

from fsdl_lib.atomic import fsync_dir
from fsdl_lib.classes import SCENE_CLASSES
from fsdl_lib.dataset import IMAGE_SUFFIXES, scan_split
from fsdl_lib.exceptions import FsdlError

if TYPE_CHECKING:
    from fsdl_lib.config import Settings

log = logging.getLogger(__name__)

MANIFEST_FIELDS: Final = ("status", "label", "sha256", "source", "target")
MERGED, DUPLICATE, CONFLICT, IN_TEST = "merged", "duplicate", "conflict", "in_test"
TEMP_PREFIX: Final = ".fsdl-merge-"
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


def merge_feedback(settings: Settings, run_id: str, *, step: Callable[[str], None] | None = None) -> MergeReport:
    """Merge ``settings.scenes_feedback_dir`` into the training split; see the module's docstring.

    ``run_id`` names the manifest (``<raw>/feedback_merges/<run_id>.csv``): a retry of the same run
    continues it. ``step`` is called after each durable step of a move (tests kill the process there).
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
        self.manifests.mkdir(parents=True, exist_ok=True)
        with _locked(self.manifests / ".lock"):
            for label in self.classes:
                (self.train / label).mkdir(parents=True, exist_ok=True)
                (self.feedback / label).mkdir(parents=True, exist_ok=True)
            self._remove_leftovers()
            train = {record.sha256: record.label for record in scan_split(self.train, self.classes)}
            in_test = {record.sha256 for record in scan_split(self.test, self.classes)}
            log.info("training split holds %d distinct images; test split %d", len(train), len(in_test))
            manifest = self.manifests / f"{run_id}.csv"
            done = _read_manifest(manifest)
            candidates, skipped = self._candidates()
            labels_of: dict[str, set[str]] = defaultdict(set)
            for candidate in candidates:
                labels_of[candidate.sha256].add(candidate.label)
            counts: dict[str, int] = defaultdict(int)
            with _manifest_writer(manifest) as write:
                for candidate in candidates:
                    status = self._merge_one(candidate, train, in_test, labels_of, done, write)
                    counts[status] += 1
            merged = sum(1 for status, _, _ in done.values() if status == MERGED) + counts["new"]
        report = MergeReport(
            run_id=run_id,
            manifest=manifest,
            merged=merged,
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
        write: Callable[[Sequence[str]], None],
    ) -> str:
        label, sha = candidate.label, candidate.sha256
        target = f"{label}/{candidate.target_name}"
        source = str(candidate.source.relative_to(self.feedback))
        if done.get((sha, label), ("",))[0] == MERGED:
            # An earlier attempt of this run logged the move and was killed: finish it, count it once.
            if train.get(sha) != label:
                self._move(candidate)
                train[sha] = label
            candidate.source.unlink(missing_ok=True)
            return "finished"
        if sha in in_test:
            write((IN_TEST, label, sha, source, ""))
            candidate.source.unlink()
            log.warning("refused %s: the same image is in the test split", source)
            return IN_TEST
        if len(labels_of[sha]) > 1 or (sha in train and train[sha] != label):
            claims = sorted(labels_of[sha] | ({train[sha]} if sha in train else set()))
            write((CONFLICT, label, sha, source, f"train:{train[sha]}" if sha in train else ""))
            log.warning("conflict: %s is claimed as %s; left in place for a person to decide", source, claims)
            return CONFLICT
        if sha in train:
            write((DUPLICATE, label, sha, source, ""))
            candidate.source.unlink()
            return DUPLICATE
        write((MERGED, label, sha, source, target))
        self.step("manifest")
        self._move(candidate)
        train[sha] = label
        candidate.source.unlink()
        self.step("removed")
        log.info("merged %s", target)
        return "new"

    def _move(self, candidate: _Candidate) -> None:
        folder = self.train / candidate.label
        fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=folder)  # a fresh name: never one found on disk
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(candidate.data)
                out.flush()
                os.fsync(out.fileno())
            self.step("copied")
            os.replace(tmp, folder / candidate.target_name)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        fsync_dir(folder)
        self.step("renamed")

    def _candidates(self) -> tuple[list[_Candidate], list[str]]:
        candidates, skipped = [], []
        for label in self.classes:
            folder = self.feedback / label
            for entry in sorted(os.scandir(folder), key=lambda e: e.name):
                if entry.name.startswith("."):
                    continue
                path = Path(entry.path)
                relative = f"{label}/{entry.name}"
                kind = _kind(entry.stat(follow_symlinks=False).st_mode)
                if kind != "file":
                    skipped.append(f"{relative}: a {kind}, not a regular file")
                    continue
                if path.suffix.lower() not in IMAGE_SUFFIXES:
                    skipped.append(f"{relative}: not a {'/'.join(sorted(IMAGE_SUFFIXES))} file")
                    continue
                data = _read_regular(path)
                if data is None:
                    skipped.append(f"{relative}: replaced by something other than a regular file while read")
                    continue
                candidates.append(_Candidate(label, path, hashlib.sha256(data).hexdigest(), data))
        return candidates, skipped

    def _remove_leftovers(self) -> None:
        """Temporary files of an attempt killed between copy and rename: incomplete, never referenced."""
        for label in self.classes:
            for entry in os.scandir(self.train / label):
                if entry.name.startswith(TEMP_PREFIX) and not entry.is_dir(follow_symlinks=False):
                    os.unlink(entry.path)  # a link is removed itself, never followed


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


def _read_manifest(path: Path) -> dict[tuple[str, str], tuple[str, str, str]]:
    """(sha256, label) → (status, source, target) of each entry of an earlier attempt of this run."""
    if not path.exists():
        return {}
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    return {(r["sha256"], r["label"]): (r["status"], r["source"], r["target"]) for r in rows if r.get("sha256")}


@contextlib.contextmanager
def _manifest_writer(path: Path) -> Iterator[Callable[[Sequence[str]], None]]:
    """Appends one durable row at a time (written and synced before the move it describes)."""
    new = not path.exists()
    with path.open("a", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        if new:
            _durable_row(handle, writer, MANIFEST_FIELDS)

        def write(row: Sequence[str]) -> None:
            _durable_row(handle, writer, row)

        yield write


def _durable_row(handle: TextIO, writer: Any, row: Sequence[str]) -> None:
    writer.writerow(row)
    handle.flush()
    os.fsync(handle.fileno())


@contextlib.contextmanager
def _locked(path: Path, timeout: float = LOCK_TIMEOUT_SECONDS) -> Iterator[None]:
    """An exclusive lock on ``path``; a clear error where the file system cannot lock, or after ``timeout``."""
    with path.open("a") as handle:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise FsdlError(f"another merge has held {path} for {timeout:.0f} s; is one stuck?") from None
                time.sleep(0.5)
            except OSError as exc:
                raise FsdlError(
                    f"cannot lock {path}: the file system does not support locking ({exc.strerror}); "
                    "keep the data folder on a local disk or a file system with working locks"
                ) from exc
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
