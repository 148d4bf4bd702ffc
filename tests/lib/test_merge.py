"""The merge of accepted feedback into the training split (fsdl_lib.merge), on a real folder and on
a real SeaweedFS bucket: what is in the split, the feedback and the manifest after each case, and
after a kill at every step."""

from __future__ import annotations

import csv
import errno
import hashlib
import io
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from fsdl_lib import storage
from fsdl_lib.config import load_settings
from fsdl_lib.exceptions import FsdlError
from fsdl_lib.merge import merge_feedback
from fsdl_lib.seeding import seed_scenes
from tests.conftest import data_environment, feedback_root


@pytest.fixture
def data(data_root, sample_dir) -> Path:
    seed_scenes(sample_dir, data_root / "raw" / "intel_scenes")
    return data_root


@pytest.fixture
def folder(tmp_path, sample_dir) -> Path:
    """The data on a folder only: for what only a file system has (links, FIFOs, locks)."""
    seed_scenes(sample_dir, tmp_path / "raw" / "intel_scenes")
    return tmp_path


def settings(data: Path):
    return load_settings(data_environment(data))


def train_dir(data: Path) -> Path:
    return data / "raw" / "intel_scenes" / "train"


def feedback_dir(data: Path) -> Path:
    return feedback_root(data) / "intel_scenes"


def contents(root: Path) -> dict[str, bytes]:
    names = list(storage.files(root))
    return dict(storage.read_many(root, names))  # type: ignore[arg-type]


def train_images(data: Path) -> list[tuple[str, str]]:
    """(label, sha256) of every image in the training split."""
    return sorted(
        (name.split("/")[0], hashlib.sha256(data).hexdigest()) for name, data in contents(train_dir(data)).items()
    )


def manifest_rows(report) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(storage.read_bytes(report.manifest).decode())))


def test_accepted_feedback_moves_into_train_with_a_manifest(data, accepted_feedback):
    before = train_images(data)
    hashes = accepted_feedback(data, "glacier", "mountain", 2)
    report = merge_feedback(settings(data), "scheduled__2026-11-29T10:00:00+00:00")
    assert (report.merged, report.duplicates, report.conflicts, report.in_test) == (2, 0, 0, 0)
    assert report.manifest.name == "scheduled__2026-11-29T10_00_00_00_00.csv"
    assert train_images(data) == sorted(before + [("glacier", h) for h in hashes])
    assert storage.files(feedback_dir(data)) == {}
    rows = manifest_rows(report)
    assert [(r["status"], r["label"], r["target"]) for r in rows] == [
        ("merged", "glacier", f"glacier/{h}.jpg") for h in sorted(hashes)
    ]


def test_duplicates_are_dropped_and_other_files_left_alone(data):
    existing = contents(train_dir(data) / "sea")
    folder = feedback_dir(data) / "sea"
    storage.write_bytes(folder / "copy.jpg", existing[sorted(existing)[0]])
    storage.write_bytes(folder / "note.txt", b"not an image")
    before = train_images(data)
    report = merge_feedback(settings(data), "r1")
    assert (report.merged, report.duplicates) == (0, 1)
    assert report.skipped == ("sea/note.txt: not a .jpeg/.jpg/.png file",)
    assert train_images(data) == before
    assert list(storage.files(folder)) == ["note.txt"]


def test_links_folders_and_fifos_are_reported_never_followed(folder, tmp_path_factory):
    data = folder
    outside = tmp_path_factory.mktemp("outside")
    secret = outside / "secret.jpg"
    secret.write_bytes(b"not for training")
    victim = outside / "victim.jpg"
    victim.write_bytes(b"must stay as it is")
    forest = feedback_dir(data) / "forest"
    forest.mkdir(parents=True)
    (forest / "link.jpg").symlink_to(secret)
    (forest / "folder.jpg").mkdir()
    os.mkfifo(forest / "pipe.jpg")
    # A leftover's name the merge removes, placed in advance by whoever can write there.
    trap = train_dir(data) / "forest" / ".trap.jpg.x1y2.tmp"
    trap.symlink_to(victim)
    before = train_images(data)

    report = merge_feedback(settings(data), "r1")
    assert report.merged == 0
    assert sorted(report.skipped) == [
        "forest/folder.jpg: a directory, not a regular file",
        "forest/link.jpg: a symlink, not a regular file",
        "forest/pipe.jpg: a FIFO, not a regular file",
    ]
    assert victim.read_bytes() == b"must stay as it is"
    assert not trap.is_symlink()
    assert train_images(data) == before
    assert (forest / "link.jpg").is_symlink()
    assert (forest / "folder.jpg").is_dir()


def test_a_test_image_sent_back_never_reaches_training(data):
    test_images = contents(data / "raw" / "intel_scenes" / "test" / "street")
    leak = feedback_dir(data) / "buildings" / "leak.jpg"  # under any label
    storage.write_bytes(leak, test_images[sorted(test_images)[0]])
    before = train_images(data)
    report = merge_feedback(settings(data), "r1")
    assert (report.merged, report.in_test) == (0, 1)
    assert train_images(data) == before
    assert not storage.exists(leak)
    assert [r["status"] for r in manifest_rows(report)] == ["in_test"]


def test_the_same_image_under_two_labels_is_a_conflict_left_for_a_person(data, accepted_feedback):
    (digest,) = accepted_feedback(data, "sea", "sea", 1)
    photo = storage.read_bytes(feedback_dir(data) / "sea" / f"{digest}.jpg")
    storage.write_bytes(feedback_dir(data) / "glacier" / f"{digest}.jpg", photo)
    forest = contents(train_dir(data) / "forest")
    storage.write_bytes(feedback_dir(data) / "street" / "relabelled.jpg", forest[sorted(forest)[0]])
    before = train_images(data)

    report = merge_feedback(settings(data), "r1")
    assert (report.merged, report.conflicts) == (0, 3)
    assert train_images(data) == before
    assert len(storage.files(feedback_dir(data))) == 3  # nothing dropped by name order
    rows = sorted((r["label"], r["status"], r["target"]) for r in manifest_rows(report))
    assert rows == [("glacier", "conflict", ""), ("sea", "conflict", ""), ("street", "conflict", "train:forest")]


def test_a_name_in_the_split_holding_other_bytes_is_never_overwritten(data, accepted_feedback):
    (digest,) = accepted_feedback(data, "sea", "sea", 1)
    squatter = train_dir(data) / "sea" / f"{digest}.jpg"
    storage.write_bytes(squatter, b"other bytes under the name the photo would get")
    with pytest.raises(FsdlError, match="already holds other bytes"):
        merge_feedback(settings(data), "r1")
    assert storage.read_bytes(squatter) == b"other bytes under the name the photo would get"
    assert storage.exists(feedback_dir(data) / "sea" / f"{digest}.jpg")  # the photo stays for a person


KILLER = """
import os, signal, sys
from fsdl_lib.config import load_settings
from fsdl_lib.merge import merge_feedback

step_name, nth = sys.argv[1], int(sys.argv[2])
seen = []

def step(name):
    if name == step_name:
        seen.append(name)
        if len(seen) == nth:
            os.kill(os.getpid(), signal.SIGKILL)

merge_feedback(load_settings(), "retried-run", step=step)
"""


@pytest.mark.parametrize("step", ["manifest", "copied", "removed"])
def test_killed_at_any_step_then_rerun_loses_nothing_and_counts_nothing_twice(data, accepted_feedback, step):
    before = train_images(data)
    new = accepted_feedback(data, "street", "buildings", 3)
    env = {**os.environ, **data_environment(data)}
    killed = subprocess.run([sys.executable, "-c", KILLER, step, "2"], env=env, capture_output=True, timeout=120)
    assert killed.returncode == -signal.SIGKILL, killed.stderr

    report = merge_feedback(settings(data), "retried-run")
    assert report.merged == 3
    assert train_images(data) == sorted(before + [("street", h) for h in new])
    assert storage.files(feedback_dir(data)) == {}
    merged = [r["sha256"] for r in manifest_rows(report) if r["status"] == "merged"]
    assert sorted(merged) == sorted(new)  # each move logged exactly once
    again = merge_feedback(settings(data), "retried-run")
    assert (again.merged, again.duplicates) == (3, 0)
    if not storage.is_object_store(data):  # a copy killed before its link left no temporary file behind
        assert not [p for p in train_dir(data).glob("*/.*") if p.name != ".lock"]


def test_a_file_system_without_locks_fails_with_a_clear_message(folder, monkeypatch):
    # No file system without working locks is mounted on test machines; flock fails as NFS does.
    def no_locks(handle, operation):
        raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))

    monkeypatch.setattr(storage.fcntl, "flock", no_locks)
    with pytest.raises(FsdlError, match="does not support locking"):
        merge_feedback(settings(folder), "r1")
