"""The files generated from fsdl_deploy (compose's environments and commands, the Procfiles,
monitoring/prometheus.yml, .env.example) are current, and the generator notices what would make
them wrong."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from fsdl_deploy import generate
from tests.conftest import ROOT


@pytest.fixture
def checkout(tmp_path):
    """A copy of the generated files, to spoil."""
    for name in {*generate.FILES, *generate.COMPOSE_FILES}:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, tmp_path / name)
    return tmp_path


def run_generate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fsdl_deploy.generate", *args], capture_output=True, text=True, timeout=120
    )


def test_the_generated_files_are_current():
    result = run_generate("--check", "--root", str(ROOT))
    assert result.returncode == 0, result.stderr
    assert generate.stale(ROOT, generate.expected(ROOT)) == []


def test_a_hand_edit_is_noticed_and_regenerating_undoes_it(checkout):
    compose = checkout / "docker-compose.yml"
    edited = compose.read_text().replace("AIRFLOW__CORE__PARALLELISM: '4'", "AIRFLOW__CORE__PARALLELISM: '64'")
    compose.write_text(edited)
    (checkout / "Procfile").write_text((checkout / "Procfile").read_text().replace("--workers 1", "--workers 9"))
    (checkout / ".env.example").unlink()

    result = run_generate("--check", "--root", str(checkout))
    assert result.returncode == 1
    for name in ("docker-compose.yml", "Procfile", ".env.example"):
        assert f"{name} is not current" in result.stderr
    assert "prometheus.yml" not in result.stderr

    assert run_generate("--root", str(checkout)).returncode == 0
    for name in generate.FILES:
        assert (checkout / name).read_text() == (ROOT / name).read_text(), name


def test_a_worker_host_that_mounts_something_or_skips_the_code_check_is_refused(checkout):
    worker = checkout / "docker-compose.worker.yml"
    text = worker.read_text()
    worker.write_text(text.replace("    hostname:", "    volumes: [./dags:/opt/airflow/dags]\n    hostname:", 1))
    with pytest.raises(ValueError, match="service airflow-worker mounts something"):
        generate.expected(checkout)
    worker.write_text(text.replace("command: *remote-worker-command", "command: [celery, worker]"))
    with pytest.raises(ValueError, match="does not run \\*remote-worker-command"):
        generate.expected(checkout)


def test_a_variable_of_the_worker_files_that_env_example_does_not_list_is_refused(checkout):
    primary = checkout / "docker-compose.primary.yml"
    primary.write_text(primary.read_text().replace("${REDIS_PORT:-6379}", "${REDIS_PUBLISHED_PORT:-6379}"))
    with pytest.raises(
        ValueError, match=r"docker-compose.primary.yml refers to variables .* \['REDIS_PUBLISHED_PORT'\]"
    ):
        generate.expected(checkout)


def test_a_service_that_does_not_run_its_generated_command_is_refused(checkout):
    compose = checkout / "docker-compose.yml"
    compose.write_text(compose.read_text().replace("command: *flower-command", "command: celery flower --debug"))
    with pytest.raises(ValueError, match="service flower does not run"):
        generate.expected(checkout)
    result = run_generate("--check", "--root", str(checkout))
    assert result.returncode == 2
    assert "flower" in result.stderr


def test_a_compose_variable_missing_from_env_example_is_refused(checkout):
    compose = checkout / "docker-compose.yml"
    text = compose.read_text().replace('max-size: "10m"', "max-size: ${FSDL_LOG_SIZE:-10m}")
    compose.write_text(text)
    with pytest.raises(ValueError, match="FSDL_LOG_SIZE"):
        generate.expected(checkout)


def test_a_file_without_its_generated_block_is_refused(checkout):
    compose = checkout / "docker-compose.yml"
    compose.write_text(compose.read_text().replace(generate.compose.END, "# the end"))
    with pytest.raises(ValueError, match="no generated block"):
        generate.expected(checkout)
