"""scripts/download_intel_scenes.py on a local zip laid out like Kaggle's (no network)."""

import importlib.util
import zipfile

import pytest

from fsdl_lib.dataset import scan_split
from fsdl_lib.seeding import MARKER, seed_scenes
from tests.conftest import ROOT

spec = importlib.util.spec_from_file_location("download_intel_scenes", ROOT / "scripts" / "download_intel_scenes.py")
download = importlib.util.module_from_spec(spec)
spec.loader.exec_module(download)


@pytest.fixture
def kaggle_zip(tmp_path, sample_dir):
    path = tmp_path / "intel.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for photo in sorted(sample_dir.glob("*/*.jpg")):
            label = photo.parent.name
            split = "seg_test" if int(photo.stem) % 3 == 0 else "seg_train"
            archive.write(photo, f"{split}/{split}/{label}/{photo.name}")
            archive.write(photo, f"seg_pred/seg_pred/{photo.name}")  # unlabelled: ignored
    return path


def test_subset_replaces_the_seeded_sample_reproducibly(kaggle_zip, tmp_path, sample_dir):
    dest = tmp_path / "intel_scenes"
    seed_scenes(sample_dir, dest)
    counts = download.import_archive(kaggle_zip, dest, subset={"train": 30, "test": 10}, seed=7)
    assert counts == {"train": 30, "test": 10}
    assert not (dest / MARKER).exists()
    assert len(scan_split(dest / "train")) == 30
    again = tmp_path / "again"
    download.import_archive(kaggle_zip, again, subset={"train": 30, "test": 10}, seed=7)
    assert scan_split(again / "train") == scan_split(dest / "train")


def test_whole_archive_and_refusal_to_mix_datasets(kaggle_zip, tmp_path):
    dest = tmp_path / "intel_scenes"
    counts = download.import_archive(kaggle_zip, dest)
    assert counts["train"] + counts["test"] == 120
    with pytest.raises(SystemExit, match="already holds a dataset"):
        download.import_archive(kaggle_zip, dest)


def test_missing_credentials_say_how_to_fix(monkeypatch, tmp_path):
    monkeypatch.delenv("KAGGLE_USERNAME", raising=False)
    monkeypatch.delenv("KAGGLE_KEY", raising=False)
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path))
    with pytest.raises(SystemExit, match="KAGGLE_USERNAME and KAGGLE_KEY"):
        download.credentials()
