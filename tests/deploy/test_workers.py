"""What a worker host gets and checks: the least of the first host's secrets, Celery's results in a
database of their own (on the real Postgres), and the code check that keeps an image with other DAGs
or another fsdl_lib from taking tasks."""

from __future__ import annotations

import secrets
import shutil
import stat

import psycopg2
import pytest

from fsdl_deploy import compose, workers
from fsdl_deploy.files import referenced_variables
from fsdl_deploy.objectstore import credential_variables
from fsdl_deploy.secrets import COMPOSE, SECRETS, read_env_file
from tests.conftest import ROOT

ADMIN = "postgresql+psycopg2://postgres@127.0.0.1:5432/{}"

WORKER_SECRETS = {
    "REDIS_PASSWORD", "CELERY_RESULTS_PASSWORD", "MLFLOW_PIPELINES_PASSWORD", *credential_variables("workers"),
}  # fmt: skip


def test_a_worker_host_holds_only_the_secrets_it_needs():
    text = (ROOT / workers.WORKER_FILE).read_text()
    assert text == compose.with_generated_block(text, compose.worker_block)
    held = referenced_variables(text) & (SECRETS.keys() | COMPOSE.keys())
    assert held == WORKER_SECRETS, sorted(held ^ WORKER_SECRETS)
    env = compose.remote_worker_container()
    assert not compose.REMOTE_WITHHELD & env.keys() - {"AIRFLOW__METRICS__STATSD_ON"}
    # Every service of the first host through the ports it publishes for workers, by its compose name.
    assert env["AIRFLOW__CELERY__BROKER_URL"].endswith("@redis:${REDIS_PORT:-6379}/0")
    assert env["AIRFLOW__CELERY__RESULT_BACKEND"].endswith("@postgres:${POSTGRES_PORT:-5432}/celery_results")
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://airflow-apiserver:${AIRFLOW_PORT:-8080}/execution/"
    # The first host's containers keep their results where the worker hosts do, with the same role.
    first = compose.airflow_containers()["AIRFLOW__CELERY__RESULT_BACKEND"]
    assert (
        first.replace("@postgres:5432/", "@postgres:${POSTGRES_PORT:-5432}/") == env["AIRFLOW__CELERY__RESULT_BACKEND"]
    )


def test_worker_env_carries_what_the_worker_file_refers_to_and_nothing_else(tmp_path):
    env = tmp_path / ".env"
    env.write_text(
        "REDIS_PASSWORD=r\nCELERY_RESULTS_PASSWORD=c\nMLFLOW_PIPELINES_PASSWORD=m\nOBJECTSTORE_WORKERS_ACCESS_KEY=k\n"
        "OBJECTSTORE_WORKERS_SECRET_KEY=s\nPOSTGRES_PASSWORD=never\nAIRFLOW__CORE__FERNET_KEY=never\n"
        "FSDL_IMAGE_SIZE=96\nAIRFLOW_PORT=18080\n"
    )
    out = tmp_path / "worker.env"
    assert workers.main([str(env), str(out), "--address", "10.1.2.3", "--hostname", "gpu-1", "--root", str(ROOT)]) == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    values = read_env_file(out)
    assert values["FSDL_PRIMARY_ADDRESS"] == "10.1.2.3"
    assert values["FSDL_WORKER_HOSTNAME"] == "gpu-1"
    assert values["FSDL_IMAGE_SIZE"] == "96"
    assert values["AIRFLOW_PORT"] == "18080"
    assert "never" not in values.values()
    assert "POSTGRES_PASSWORD" not in values
    assert values.keys() >= WORKER_SECRETS


def test_worker_env_refuses_a_host_name_for_the_address_and_a_file_without_secrets(tmp_path, capsys):
    env = tmp_path / ".env"
    env.write_text("REDIS_PASSWORD=r\n")
    out = tmp_path / "worker.env"
    assert workers.main([str(env), str(out), "--address", "first.example", "--root", str(ROOT)]) == 2
    assert "is not an IP address" in capsys.readouterr().err
    assert workers.main([str(env), str(out), "--address", "10.1.2.3", "--root", str(ROOT)]) == 2
    err = capsys.readouterr().err
    assert "lacks CELERY_RESULTS_PASSWORD" in err
    assert "run `make secrets` first" in err
    assert not out.exists()


def test_a_worker_with_other_code_refuses_to_start(tmp_path):
    data, dags = tmp_path / "data", tmp_path / "dags"
    shutil.copytree(ROOT / "dags", dags, ignore=shutil.ignore_patterns("__pycache__"))
    with pytest.raises(workers.CodeMismatchError, match="published no code fingerprint"):
        workers.check_fingerprint(data, dags)
    published = workers.publish_fingerprint(data, dags)
    assert published.files > len(list(dags.glob("*.py")))  # fsdl_lib's sources are in it too
    (dags / "__pycache__").mkdir(exist_ok=True)
    (dags / "__pycache__" / "x.py").write_text("# not code")
    assert workers.check_fingerprint(data, dags) == published

    (dags / "wine_quality.py").write_text((dags / "wine_quality.py").read_text() + "\n# another commit\n")
    with pytest.raises(workers.CodeMismatchError, match="not the first host's") as refused:
        workers.check_fingerprint(data, dags)
    assert published.sha256[:12] in str(refused.value)
    assert "rebuild the image" in str(refused.value)


@pytest.fixture
def metadata_database():
    """A fresh database on the real Postgres standing in for Airflow's metadata database; dropped after,
    with the results database and role a test makes."""
    name = f"fsdl_meta_{secrets.token_hex(4)}"
    made: list[tuple[str, str]] = []
    connection = psycopg2.connect(ADMIN.format("postgres").replace("+psycopg2", ""))
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name, made
    finally:
        with connection.cursor() as cursor:
            for database, role in made:
                cursor.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
                cursor.execute(f'DROP ROLE IF EXISTS "{role}"')
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.close()


def test_the_results_role_owns_its_database_and_reaches_nothing_else(metadata_database):
    metadata, made = metadata_database
    role, database = f"celery_{secrets.token_hex(3)}", f"results_{secrets.token_hex(3)}"
    made.append((database, role))
    backend = f"db+postgresql://{role}:first-password@127.0.0.1:5432/{database}"
    assert workers.prepare_results_database(ADMIN.format(metadata), backend) is True
    assert workers.prepare_results_database(ADMIN.format(metadata), backend.replace("first", "second")) is False

    results = psycopg2.connect(f"postgresql://{role}@127.0.0.1:5432/{database}")
    with results, results.cursor() as cursor:  # Celery creates its tables there
        cursor.execute("CREATE TABLE celery_taskmeta (id integer)")
        cursor.execute("SELECT rolsuper, rolcreatedb, rolcreaterole FROM pg_roles WHERE rolname = current_user")
        assert cursor.fetchone() == (False, False, False)
    results.close()
    with pytest.raises(psycopg2.OperationalError, match="permission denied for database"):
        psycopg2.connect(f"postgresql://{role}@127.0.0.1:5432/{metadata}")


def test_a_result_backend_that_is_not_postgres_is_refused_with_its_setting():
    with pytest.raises(ValueError, match="AIRFLOW__CELERY__RESULT_BACKEND is not db\\+postgresql"):
        workers.prepare_results_database(ADMIN.format("postgres"), "redis://:pw@redis:6379/1")
