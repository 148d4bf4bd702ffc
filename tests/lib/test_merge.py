"""The merge of accepted feedback into the training split (fsdl_lib.merge), on real files: what is
on disk and in the manifest after each case, and after a kill at every step."""

from __future__ import annotations

import csv
import errno
import hashlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from fsdl_lib import merge as merge_module
from fsdl_lib.config import load_settings
from fsdl_lib.exceptions import FsdlError
from fsdl_lib.merge import merge_feedback
from fsdl_lib.seeding import seed_scenes


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def data(tmp_path, sample_dir) -> Path:
    seed_scenes(sample_dir, tmp_path / "raw" / "intel_scenes")
    return tmp_path


def settings(data: Path):
    return load_settings({"FSDL_DATA_DIR": str(data)})


def train_dir(data: Path) -> Path:
    return data / "raw" / "intel_scenes" / "train"


def feedback_dir(data: Path) -> Path:
    return data / "feedback" / "intel_scenes"


def train_images(data: Path) -> list[tuple[str, str]]:
    """(label, sha256) of every image in the training split, hidden files included."""
    return sorted((p.parent.name, sha(p)) for p in train_dir(data).glob("*/*") if p.is_file())


def manifest_rows(report) -> list[dict[str, str]]:
    with report.manifest.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_accepted_feedback_moves_into_train_with_a_manifest(data, accepted_feedback):
    before = train_images(data)
    hashes = accepted_feedback(data, "glacier", "mountain", 2)
    report = merge_feedback(settings(data), "scheduled__2026-11-29T10:00:00+00:00")
    assert (report.merged, report.duplicates, report.conflicts, report.in_test) == (2, 0, 0, 0)
    assert report.manifest.name == "scheduled__2026-11-29T10_00_00_00_00.csv"
    assert train_images(data) == sorted(before + [("glacier", h) for h in hashes])
    assert not list(feedback_dir(data).glob("*/*"))
    rows = manifest_rows(report)
    assert [(r["status"], r["label"], r["target"]) for r in rows] == [
        ("merged", "glacier", f"glacier/{h}.jpg") for h in sorted(hashes)
    ]


def test_duplicates_are_dropped_and_other_files_left_alone(data):
    existing = sorted((train_dir(data) / "sea").glob("*.jpg"))[0]
    folder = feedback_dir(data) / "sea"
    folder.mkdir(parents=True)
    (folder / "copy.jpg").write_bytes(existing.read_bytes())
    (folder / "note.txt").write_text("not an image")
    before = train_images(data)
    report = merge_feedback(settings(data), "r1")
    assert (report.merged, report.duplicates) == (0, 1)
    assert report.skipped == ("sea/note.txt: not a .jpeg/.jpg/.png file",)
    assert train_images(data) == before
    assert sorted(p.name for p in folder.iterdir()) == ["note.txt"]


def test_links_folders_and_fifos_are_reported_never_followed(data, tmp_path_factory):
    outside = tmp_path_factory.mktemp("outside")
    secret = outside / "secret.jpg"
    secret.write_bytes(b"not for training")
    victim = outside / "victim.jpg"
    victim.write_bytes(b"must stay as it is")
    folder = feedback_dir(data) / "forest"
    folder.mkdir(parents=True)
    (folder / "link.jpg").symlink_to(secret)
    (folder / "folder.jpg").mkdir()
    os.mkfifo(folder / "pipe.jpg")
    # A name the merge might write through, placed in advance by whoever can write there.
    (train_dir(data) / "forest" / f"{merge_module.TEMP_PREFIX}trap").symlink_to(victim)
    before = train_images(data)

    report = merge_feedback(settings(data), "r1")
    assert report.merged == 0
    assert sorted(report.skipped) == [
        "forest/folder.jpg: a directory, not a regular file",
        "forest/link.jpg: a symlink, not a regular file",
        "forest/pipe.jpg: a FIFO, not a regular file",
    ]
    assert victim.read_bytes() == b"must stay as it is"
    assert not (train_dir(data) / "forest" / f"{merge_module.TEMP_PREFIX}trap").exists()
    assert [label_sha for label_sha in train_images(data) if label_sha not in before] == []
    assert (folder / "link.jpg").is_symlink()
    assert (folder / "folder.jpg").is_dir()


def test_a_test_image_sent_back_never_reaches_training(data):
    test_image = sorted((data / "raw" / "intel_scenes" / "test" / "street").glob("*.jpg"))[0]
    folder = feedback_dir(data) / "buildings"  # under any label
    folder.mkdir(parents=True)
    (folder / "leak.jpg").write_bytes(test_image.read_bytes())
    before = train_images(data)
    report = merge_feedback(settings(data), "r1")
    assert (report.merged, report.in_test) == (0, 1)
    assert train_images(data) == before
    assert not (folder / "leak.jpg").exists()
    assert [r["status"] for r in manifest_rows(report)] == ["in_test"]


def test_the_same_image_under_two_labels_is_a_conflict_left_for_a_person(data, accepted_feedback):
    (digest,) = accepted_feedback(data, "sea", "sea", 1)
    other = feedback_dir(data) / "glacier"
    other.mkdir(parents=True)
    (other / f"{digest}.jpg").write_bytes((feedback_dir(data) / "sea" / f"{digest}.jpg").read_bytes())
    in_train = sorted((train_dir(data) / "forest").glob("*.jpg"))[0]
    (feedback_dir(data) / "street").mkdir(parents=True)
    (feedback_dir(data) / "street" / "relabelled.jpg").write_bytes(in_train.read_bytes())
    before = train_images(data)

    report = merge_feedback(settings(data), "r1")
    assert (report.merged, report.conflicts) == (0, 3)
    assert train_images(data) == before
    assert len(list(feedback_dir(data).glob("*/*"))) == 3  # nothing dropped by name order
    rows = sorted((r["label"], r["status"], r["target"]) for r in manifest_rows(report))
    assert rows == [("glacier", "conflict", ""), ("sea", "conflict", ""), ("street", "conflict", "train:forest")]


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


@pytest.mark.parametrize("step", ["manifest", "copied", "renamed", "removed"])
def test_killed_at_any_step_then_rerun_loses_nothing_and_counts_nothing_twice(data, accepted_feedback, step):
    before = train_images(data)
    new = accepted_feedback(data, "street", "buildings", 3)
    env = {**os.environ, "FSDL_DATA_DIR": str(data)}
    killed = subprocess.run([sys.executable, "-c", KILLER, step, "2"], env=env, capture_output=True, timeout=120)
    assert killed.returncode == -signal.SIGKILL, killed.stderr

    report = merge_feedback(settings(data), "retried-run")
    assert report.merged == 3
    assert train_images(data) == sorted(before + [("street", h) for h in new])
    assert not list(feedback_dir(data).glob("*/*"))
    merged = [r["sha256"] for r in manifest_rows(report) if r["status"] == "merged"]
    assert sorted(merged) == sorted(new)  # each move logged exactly once
    again = merge_feedback(settings(data), "retried-run")
    assert (again.merged, again.duplicates) == (3, 0)


def test_a_file_system_without_locks_fails_with_a_clear_message(data, monkeypatch):
    # No file system without working locks is mounted on test machines; flock fails as NFS does.
    def no_locks(handle, operation):
        raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))

    monkeypatch.setattr(merge_module.fcntl, "flock", no_locks)
    with pytest.raises(FsdlError, match="does not support locking"):
        merge_feedback(settings(data), "r1")
