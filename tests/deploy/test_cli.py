"""The `fsdl-deploy` command, run as the start-up scripts run it: its output, files and exit codes."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

FSDL_DEPLOY = str(Path(sys.executable).with_name("fsdl-deploy"))


def fsdl_deploy(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {"PATH": os.environ["PATH"], "HOME": "/nonexistent", **env}
    return subprocess.run([FSDL_DEPLOY, *args], env=clean, capture_output=True, text=True, timeout=120, cwd=ROOT)


def test_env_adds_what_the_mode_runs_with(tmp_path):
    result = fsdl_deploy("env", "embedded", FSDL_STORAGE_DIR=str(tmp_path))
    assert result.returncode == 0, result.stderr
    env = dict(shlex.split(line.removeprefix("export "))[0].split("=", 1) for line in result.stdout.splitlines())
    assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    assert env["AIRFLOW__CORE__DAGS_FOLDER"] == str(ROOT / "dags")
    assert "FSDL_DATA_DIR" not in env  # the settings themselves come from `fsdl env`


def test_an_unknown_mode_exits_2_naming_the_variable():
    result = fsdl_deploy("env", "kubernetes")
    assert result.returncode == 2
    assert "FSDL_MODE='kubernetes'" in result.stderr
    assert result.stdout == ""


def test_airflow_passwords_writes_the_login_for_the_owner_only(tmp_path):
    target = tmp_path / "passwords.json"
    target.write_text('{"old": "login"}')
    result = fsdl_deploy("airflow-passwords", str(target), AIRFLOW_ADMIN_USER="ops", AIRFLOW_ADMIN_PASSWORD='p"w\\1')
    assert result.returncode == 0, result.stderr
    assert json.loads(target.read_text()) == {"ops": 'p"w\\1'}  # JSON, quotes and all: never pasted into a file
    assert target.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["passwords.json"]  # no temporary file left


def test_airflow_passwords_refuses_an_empty_password_and_keeps_the_file(tmp_path):
    target = tmp_path / "passwords.json"
    target.write_text('{"admin": "kept"}')
    result = fsdl_deploy("airflow-passwords", str(target), AIRFLOW_ADMIN_PASSWORD="")
    assert result.returncode != 0
    assert "AIRFLOW_ADMIN_PASSWORD is empty" in result.stderr
    assert json.loads(target.read_text()) == {"admin": "kept"}
