"""The `fsdl` command (fsdl_lib.cli), run as a user runs it: its output and its exit codes."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys

from tests.conftest import ROOT, SAMPLE_DIR


def fsdl(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {"PATH": os.environ["PATH"], "HOME": env.pop("HOME", "/nonexistent"), **env}
    return subprocess.run(
        [sys.executable, "-m", "fsdl_lib.cli", *args], env=clean, capture_output=True, text=True, timeout=120, cwd=ROOT
    )


def exports(text: str) -> dict[str, str]:
    pairs = (shlex.split(line.removeprefix("export "))[0].split("=", 1) for line in text.splitlines())
    return dict(pairs)


def test_env_prints_every_setting_as_shell_exports(tmp_path):
    result = fsdl("env", FSDL_DATA_DIR=str(tmp_path / "my data"), FSDL_IMAGE_SIZE="96")
    assert result.returncode == 0, result.stderr
    env = exports(result.stdout)
    assert env["FSDL_DATA_DIR"] == str(tmp_path / "my data")  # quoted: the space survives the shell
    assert env["FSDL_IMAGE_SIZE"] == "96"
    assert env["MLFLOW_TRACKING_URI"] == "http://127.0.0.1:5000"


def test_a_bad_value_exits_2_naming_the_variable():
    result = fsdl("env", FSDL_OFFLINE_WEIGHTS="maybe")
    assert result.returncode == 2
    assert "FSDL_OFFLINE_WEIGHTS='maybe'" in result.stderr
    assert "a boolean" in result.stderr
    assert result.stdout == ""


def test_env_doc_describes_each_variable_with_its_default():
    result = fsdl("env", "--doc")
    assert result.returncode == 0
    assert "FSDL_IMAGE_SIZE (default 224)" in result.stdout
    assert "AIRFLOW_ADMIN_PASSWORD (default (empty))" in result.stdout


def test_weights_cached_answers_by_exit_code(tmp_path):
    result = fsdl("weights-cached", TORCH_HOME=str(tmp_path))
    assert result.returncode == 1
    assert "not cached" in result.stdout


def test_seed_fills_an_empty_dataset_once(tmp_path):
    first = fsdl("seed", "--sample", str(SAMPLE_DIR), FSDL_DATA_DIR=str(tmp_path))
    assert first.returncode == 0, first.stderr
    assert "seeded 90 training and 30 test images" in first.stdout
    again = fsdl("seed", "--sample", str(SAMPLE_DIR), FSDL_DATA_DIR=str(tmp_path))
    assert "not seeding" in again.stdout
    assert len(list((tmp_path / "raw" / "intel_scenes").rglob("*.jpg"))) == 120


def test_compute_pool_names_the_pool_and_a_slot_per_core_for_airflow_pools_set():
    from fsdl_lib.resources import COMPUTE_POOL, available_cores

    default = fsdl("compute-pool")
    assert default.returncode == 0, default.stderr
    name, slots, description = shlex.split(default.stdout)
    assert (name, int(slots)) == (COMPUTE_POOL, available_cores())
    assert "one slot per core" in description
    configured = fsdl("compute-pool", FSDL_COMPUTE_SLOTS="12")
    assert shlex.split(configured.stdout)[1] == "12"
    assert fsdl("compute-pool", FSDL_COMPUTE_SLOTS="many").returncode == 2
