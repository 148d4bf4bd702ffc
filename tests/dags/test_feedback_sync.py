"""The feedback sync: the shell script on real files, and the DAG with its asset update."""

import hashlib
import json
import os
import shutil
import stat
import subprocess

import pytest

from tests.conftest import ROOT
from tests.dags.conftest import load_dag

SCRIPT = ROOT / "scripts" / "sync_feedback.sh"


def sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def give_feedback(data, sample_dir, label: str, source_label: str, count: int) -> list[str]:
    """Put ``count`` new photos (re-encoded samples of ``source_label``) into the feedback of ``label``."""
    from PIL import Image

    folder = data / "feedback" / "intel_scenes" / label
    folder.mkdir(parents=True, exist_ok=True)
    hashes = []
    for photo in sorted((sample_dir / source_label).glob("*.jpg"))[-count:]:
        staged = folder / ".staged.jpg"
        Image.open(photo).save(staged, quality=83)
        digest = sha(staged)
        staged.rename(folder / f"{digest}.jpg")
        hashes.append(digest)
    return hashes


def run_sync(data, *args, path: str | None = None, check: bool = True):
    env = {**os.environ, "FSDL_DATA_DIR": str(data)}
    if path:
        env["PATH"] = f"{path}:{env['PATH']}"
    return subprocess.run(["bash", str(SCRIPT), *args], env=env, capture_output=True, text=True, check=check)


def train_hashes(data) -> list[str]:
    train = data / "raw" / "intel_scenes" / "train"
    return sorted(sha(p) for p in train.glob("*/*") if not p.name.startswith("."))


def feedback_files(data) -> list:
    return sorted(p for p in (data / "feedback" / "intel_scenes").glob("*/*") if not p.name.startswith("."))


@pytest.fixture
def data(platform_data):
    return platform_data


def test_merges_feedback_into_train_atomically(data, sample_dir):
    before = train_hashes(data)
    hashes = give_feedback(data, sample_dir, "glacier", "mountain", 2)  # a correction: photos of mountains
    out = run_sync(data, "run1")
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert summary == {"merged": 2, "duplicates": 0, "manifest": summary["manifest"]}
    for h in hashes:
        assert (data / "raw" / "intel_scenes" / "train" / "glacier" / f"{h}.jpg").is_file()
    assert sorted(train_hashes(data)) == sorted(before + hashes)
    assert feedback_files(data) == []
    rows = (data / "raw" / "intel_scenes" / "feedback_merges" / "run1.csv").read_text().splitlines()
    assert rows[0] == "status,label,sha256,source,target"
    assert len(rows) == 1 + len(hashes)


def test_duplicates_are_skipped_and_nothing_is_counted_twice(data, sample_dir):
    train = data / "raw" / "intel_scenes" / "train"
    existing = sorted((train / "sea").glob("*.jpg"))[0]
    folder = data / "feedback" / "intel_scenes" / "sea"
    folder.mkdir(parents=True)
    shutil.copy(existing, folder / f"{sha(existing)}.jpg")  # already in train
    (folder / "note.txt").write_text("not an image")
    before = train_hashes(data)
    summary = json.loads(run_sync(data).stdout.strip().splitlines()[-1])
    assert (summary["merged"], summary["duplicates"]) == (0, 1)
    assert train_hashes(data) == before
    assert [p.name for p in feedback_files(data)] == ["note.txt"]


def fake_command(tmp_path, name: str) -> str:
    """A folder with ``name`` that kills the sync script (its parent) outright when called."""
    folder = tmp_path / f"kill-on-{name}"
    folder.mkdir()
    fake = folder / name
    fake.write_text(f'#!/bin/bash\n/usr/bin/env -u PATH /bin/{name} "$@"\nkill -9 $PPID\n')
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    return str(folder)


@pytest.mark.parametrize("killed_after", ["mv", "cp", "rm"])
def test_killed_run_then_rerun_loses_nothing_and_duplicates_nothing(data, sample_dir, tmp_path, killed_after):
    before = train_hashes(data)
    new = give_feedback(data, sample_dir, "street", "buildings", 3)
    killed = run_sync(data, path=fake_command(tmp_path, killed_after), check=False)
    assert killed.returncode == -9
    run_sync(data)
    after = train_hashes(data)
    assert len(after) == len(set(after)), "an image was merged twice"
    assert sorted(after) == sorted(before + new)
    assert feedback_files(data) == []
    assert not list((data / "raw" / "intel_scenes" / "train").glob("*/.*.syncing"))


def test_relative_data_dir_is_refused(tmp_path):
    out = subprocess.run(
        ["bash", str(SCRIPT)], env={**os.environ, "FSDL_DATA_DIR": "data"}, capture_output=True, text=True
    )
    assert out.returncode == 2
    assert "must be absolute" in out.stderr


def asset_events():
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        query = (
            select(AssetEvent.extra)
            .join(AssetModel, AssetModel.id == AssetEvent.asset_id)
            .where(AssetModel.name == "intel_scenes_train")
        )
        return [dict(extra) for extra in session.scalars(query)]


@pytest.mark.slow
def test_dag_updates_the_asset_only_when_it_merged(airflow_db, data, sample_dir):
    dag = load_dag("feedback_sync")
    events_before = asset_events()
    give_feedback(data, sample_dir, "forest", "forest", 2)
    run = dag.test()
    assert run.state == "success"
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert states == {"sync_feedback": "success", "publish": "success"}
    events = asset_events()
    assert len(events) == len(events_before) + 1
    assert events[-1]["merged"] == 2
    assert events[-1]["manifest"].endswith(".csv")

    idle = dag.test()
    assert {ti.task_id: ti.state for ti in idle.get_task_instances()}["publish"] == "skipped"
    assert len(asset_events()) == len(events_before) + 1
