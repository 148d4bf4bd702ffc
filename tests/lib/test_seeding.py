import subprocess
import sys

from fsdl_lib.dataset import dataset_version, scan_split
from fsdl_lib.seeding import MARKER, seed_scenes


def test_seeds_train_and_test_from_the_sample(sample_dir, tmp_path):
    result = seed_scenes(sample_dir, tmp_path)
    assert (result.seeded, result.train, result.test) == (True, 90, 30)
    train, test = scan_split(tmp_path / "train"), scan_split(tmp_path / "test")
    assert len(train) == 90
    assert len(test) == 30
    assert not {r.sha256 for r in train} & {r.sha256 for r in test}
    assert (tmp_path / MARKER).is_file()


def test_seed_is_the_same_everywhere_and_never_overwrites(sample_dir, tmp_path):
    seed_scenes(sample_dir, tmp_path / "a")
    seed_scenes(sample_dir, tmp_path / "b")
    assert dataset_version(scan_split(tmp_path / "a" / "test")) == dataset_version(scan_split(tmp_path / "b" / "test"))
    again = seed_scenes(sample_dir, tmp_path / "a")
    assert not again.seeded
    assert "already holds images" in again.reason


def test_sample_matches_its_checksums(sample_dir):
    subprocess.run(["sha256sum", "--check", "--quiet", "SHA256SUMS"], cwd=sample_dir, check=True)


def test_cli_seed_and_env(tmp_path, sample_dir):
    env = {"FSDL_DATA_DIR": str(tmp_path / "data"), "PATH": "/usr/bin:/bin"}
    run = [sys.executable, "-m", "fsdl_lib.cli"]
    out = subprocess.run(
        [*run, "seed", "--sample", str(sample_dir)], env=env, capture_output=True, text=True, check=True
    )
    assert "seeded 90 training and 30 test images" in out.stdout
    out = subprocess.run(
        [*run, "seed", "--sample", str(sample_dir)], env=env, capture_output=True, text=True, check=True
    )
    assert "not seeding" in out.stdout
    out = subprocess.run(
        [*run, "env"], env={**env, "FSDL_IMAGE_SIZE": "160"}, capture_output=True, text=True, check=True
    )
    assert f"export FSDL_DATA_DIR={tmp_path / 'data'}" in out.stdout
    assert "export FSDL_IMAGE_SIZE=160" in out.stdout
    bad = subprocess.run([*run, "env"], env={**env, "FSDL_IMAGE_SIZE": "huge"}, capture_output=True, text=True)
    assert bad.returncode == 2
    assert "FSDL_IMAGE_SIZE='huge' is not valid" in bad.stderr
