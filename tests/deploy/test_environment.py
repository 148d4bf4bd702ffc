"""The services' environment derived from the settings (fsdl_deploy.environment) and its shell side,
scripts/local-env.sh."""

from __future__ import annotations

import os
import subprocess

import pytest

from fsdl_deploy.environment import local_environment
from fsdl_deploy.objectstore import IDENTITIES, credential_variables
from fsdl_lib.config import load_settings
from fsdl_lib.exceptions import ConfigError
from tests.conftest import ROOT

STORE_SECRETS = {name: f"{name.lower()}-value" for identity in IDENTITIES for name in credential_variables(identity)}
"""What ``make secrets`` (or local-env.sh) gives the store's identities."""


def derived(mode: str, **environ: str) -> dict[str, str]:
    environ = {**STORE_SECRETS, **environ}
    settings = load_settings({"FLOWER_PASSWORD": "pw", **environ})
    return local_environment(settings, mode, root=ROOT, environ=environ)


def test_embedded_runs_airflow_on_sqlite_under_its_home(tmp_path):
    env = derived("embedded", FSDL_STORAGE_DIR=str(tmp_path))
    assert env["AIRFLOW_HOME"] == str(tmp_path / "airflow")
    assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == f"sqlite:///{tmp_path}/airflow/airflow.db"
    assert not any(name.startswith("AIRFLOW__CELERY") for name in env)
    assert env["MLFLOW_BACKEND_STORE_URI"] == f"sqlite:///{tmp_path}/mlflow/mlflow.db"
    assert env["MLFLOW_AUTH_CONFIG_PATH"] == str(tmp_path / "mlflow" / "basic_auth.ini")


def test_distributed_runs_celery_on_the_configured_postgres_and_redis():
    env = derived(
        "distributed",
        FSDL_POSTGRES_URL="postgresql+psycopg2://u:p@db:5433/af",
        FSDL_REDIS_URL="redis://cache:6380/1",
        FSDL_CELERY_CONCURRENCY="1",
        FLOWER_PORT="5599",
        AIRFLOW_PORT="8181",
    )
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == "postgresql+psycopg2://u:p@db:5433/af"
    assert env["AIRFLOW__CELERY__RESULT_BACKEND"] == "db+postgresql://u:p@db:5433/af"
    assert env["AIRFLOW__CELERY__BROKER_URL"] == "redis://cache:6380/1"
    assert env["AIRFLOW__CELERY__WORKER_CONCURRENCY"] == "1"
    assert env["AIRFLOW__CELERY__FLOWER_PORT"] == "5599"
    assert env["AIRFLOW__CELERY__FLOWER_BASIC_AUTH"] == "admin:pw"
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://127.0.0.1:8181/execution/"


def test_distributed_puts_the_data_on_its_object_store_each_service_with_its_identity():
    env = derived("distributed", OBJECTSTORE_PORT="8433")
    assert env["FSDL_DATA_URL"] == "s3://fsdl-data"
    assert env["FSDL_FEEDBACK_URL"] == "s3://fsdl-uploads/feedback"
    assert env["WEBAPP_UPLOADS_URL"] == "s3://fsdl-uploads/pending"
    assert env["FSDL_S3_ENDPOINT_URL"] == "http://127.0.0.1:8433"
    assert env["FSDL_S3_ACCESS_KEY_ID"] == "objectstore_workers_access_key-value"
    assert env["WEBAPP_S3_ACCESS_KEY_ID"] == "objectstore_webapp_access_key-value"
    assert "objectstore_admin_secret_key-value" not in env.values()  # no service holds the admin's
    assert "FSDL_DATA_URL" not in derived("embedded")  # make up keeps the folder
    # A store of the user's own wins, and the secrets the store needs are asked for by name.
    assert derived("distributed", FSDL_S3_ENDPOINT_URL="http://nas:9000")["FSDL_S3_ENDPOINT_URL"] == "http://nas:9000"
    settings = load_settings({"FLOWER_PASSWORD": "pw"})
    with pytest.raises(ValueError, match=r"OBJECTSTORE_ADMIN_ACCESS_KEY.*make secrets"):
        local_environment(settings, "distributed", root=ROOT, environ={})


def test_tuning_in_the_environment_wins_and_derived_values_do_not_move():
    env = derived("embedded", AIRFLOW__CORE__PARALLELISM="8", AIRFLOW__CORE__EXECUTOR="SequentialExecutor")
    assert env["AIRFLOW__CORE__PARALLELISM"] == "8"
    assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"  # the mode decides, not a stray variable


def test_celery_modes_need_the_flower_password_and_modes_are_checked():
    with pytest.raises(ConfigError, match="FLOWER_PASSWORD"):
        local_environment(load_settings({}), "distributed", root=ROOT, environ={})
    with pytest.raises(ConfigError, match="FSDL_MODE"):
        local_environment(load_settings({}), "kubernetes", root=ROOT, environ={})


def source_local_env(tmp_path, **extra: str) -> subprocess.CompletedProcess[str]:
    clean = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "FSDL_STORAGE_DIR": str(tmp_path), **extra}
    script = (
        f". {ROOT / 'scripts' / 'local-env.sh'} || exit 7\n"
        'set -u; echo "home=$AIRFLOW_HOME executor=$AIRFLOW__CORE__EXECUTOR"'
    )
    return subprocess.run(["bash", "-c", script], env=clean, capture_output=True, text=True, timeout=60)


def test_local_env_exports_what_the_library_derives(tmp_path):
    result = source_local_env(tmp_path, FSDL_MODE="distributed")
    assert result.returncode == 0, result.stderr
    assert f"home={tmp_path}/airflow executor=CeleryExecutor" in result.stdout


@pytest.mark.parametrize(
    ("variable", "value"), [("FSDL_IMAGE_SIZE", "big"), ("FSDL_MODE", "kubernetes")], ids=["setting", "mode"]
)
def test_local_env_stops_at_a_bad_value_and_names_it(tmp_path, variable, value):
    """A bad value stops the sourcing script with the variable's name, never an empty environment
    that fails later as an unbound variable."""
    result = source_local_env(tmp_path, **{variable: value})
    assert result.returncode == 7, result.stdout
    assert variable in result.stderr
    assert "unbound variable" not in result.stderr


def test_the_local_executor_runs_no_more_tasks_than_cores():
    from fsdl_lib.resources import available_cores

    assert derived("embedded")["AIRFLOW__CORE__PARALLELISM"] == str(min(4, available_cores()))
