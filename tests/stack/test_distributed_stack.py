"""The distributed mode for real: Postgres, Redis, Celery worker, Flower, API server, MLflow, web app.

Each process of Procfile.distributed runs on its own here (not under honcho), so the test can
SIGKILL the Celery worker in the middle of a task and start it again.
"""

from __future__ import annotations

import json

import pytest
import requests
from mlflow import MlflowClient

from fsdl_deploy.objectstore import local_ports
from fsdl_lib import storage
from fsdl_lib.exceptions import StorageError
from fsdl_tools import probes
from fsdl_tools.clients import wait_until
from fsdl_tools.faults import kill_worker_mid_task

pytestmark = pytest.mark.slow


def flower_workers(stack) -> dict:
    return wait_until(
        lambda: requests.get(
            f"{stack.flower}/api/workers", params={"refresh": "1"}, auth=stack.flower_auth(), timeout=30
        ).json(),
        90,
        "Flower seeing a Celery worker",
        interval=2,
    )


def test_flower_and_mlflow_refuse_anonymous_clients(stack):
    assert requests.get(f"{stack.flower}/api/workers", timeout=30).status_code == 401
    assert requests.get(f"{stack.flower}/", timeout=30).status_code == 401
    wrong = requests.get(f"{stack.flower}/api/workers", auth=("admin", "admin"), timeout=30)
    assert wrong.status_code == 401
    search = f"{stack.mlflow}/api/2.0/mlflow/registered-models/search"
    assert requests.get(search, timeout=30).status_code == 401
    assert requests.get(search, auth=("admin", "password1234"), timeout=30).status_code == 401
    assert requests.get(search, auth=("admin", stack.logins["MLFLOW_AUTH_ADMIN_PASSWORD"]), timeout=30).ok
    # The Airflow login is generated: the well-known default does not get a token.
    token = requests.post(f"{stack.airflow}/auth/token", json={"username": "admin", "password": "admin"}, timeout=30)
    assert token.status_code in (401, 403)


def test_dags_run_on_the_celery_worker_and_register_models(stack, as_mlflow_admin):
    workers = flower_workers(stack)
    (worker_name,) = workers
    assert [q["name"] for q in workers[worker_name]["active_queues"]] == ["default"]

    wine = stack.client.trigger("wine_quality")
    scenes = stack.client.trigger("intel_scenes_parallel")
    assert stack.wait_for_run("wine_quality", wine, 600)["state"] == "success", stack.logs()
    assert stack.wait_for_run("intel_scenes_parallel", scenes, 900)["state"] == "success", stack.logs()

    hostname = worker_name.split("@", 1)[1]
    for dag_id, run_id in (("wine_quality", wine), ("intel_scenes_parallel", scenes)):
        instances = stack.client.task_instances(dag_id, run_id)
        assert instances
        for ti in instances:
            assert ti["state"] == "success"
            assert ti["queue"] == "default"
            assert ti["hostname"] == hostname, ti
            assert ti["executor"] in (None, "CeleryExecutor") or "Celery" in str(ti["executor"])
    tasks = requests.get(f"{stack.flower}/api/tasks", auth=stack.flower_auth(), timeout=30).json()
    assert sum(t["state"] == "SUCCESS" for t in tasks.values()) >= 6 + 1 + 3

    client = MlflowClient(stack.mlflow)
    wine_version = client.get_model_version_by_alias("wine-quality", "challenger")
    scenes_version = client.get_model_version_by_alias("intel-scenes", "challenger")
    assert wine_version.tags["airflow_dag_run_id"] == wine
    assert scenes_version.tags["airflow_dag_run_id"] == scenes
    assert scenes_version.tags["backbone_id"] == "resnet50:random-seed0:resize96"


def test_the_data_is_on_the_object_store_and_no_folder_holds_it(stack):
    """After the runs above: the photos, the wine splits and the features are objects of the data
    bucket; the data folder the local modes would use holds nothing."""
    data = storage.files(stack.store_location("s3://fsdl-data"))
    photos = [name for name in data if name.startswith("raw/intel_scenes/train/")]
    assert len(photos) >= 6 * 4, sorted(data)[:20]
    assert any(name.startswith("raw/wine/") for name in data)
    assert any(name.startswith("processed/") and name.endswith(".npz") for name in data), sorted(data)
    # The extraction's shards were taken into the caches and removed, with the workers' identity.
    assert not [name for name in data if name.startswith("scratch/")], sorted(data)
    assert not (stack.workspace / "data").exists() or not any((stack.workspace / "data").rglob("*.*"))
    # The web app's identity reaches its own bucket, and none of the training data.
    with pytest.raises(StorageError, match="refused this service's credentials"):
        storage.files(stack.store_location("s3://fsdl-data", "webapp"))
    # The S3 gateway's gRPC port, which would let any client replace its identities, takes none.
    answers = probes.grpc_clients("127.0.0.1", local_ports(stack.ports["OBJECTSTORE_PORT"])["s3.port.grpc"])
    assert probes.takes_clients(answers) == [], answers
    assert "CERTIFICATE_REQUIRED" in answers["tls"], answers


def test_task_logs_are_read_from_the_object_store(stack):
    """A finished task's log is on the store, and the API reads it from there when the worker's
    disk no longer has it (as for a worker on another host)."""
    run = stack.client.trigger("wine_quality")
    assert stack.wait_for_run("wine_quality", run, 600)["state"] == "success", stack.logs()
    logs = storage.files(stack.store_location("s3://fsdl-logs/airflow"))
    (key,) = [name for name in logs if f"run_id={run}/" in name and "task_id=split_data/" in name]
    local = stack.workspace / "storage" / "airflow" / "logs" / key
    assert local.is_file()
    local.unlink()  # the worker's own copy gone
    content = json.dumps(stack.client.task_log("wine_quality", run, "split_data"))
    assert "fsdl-logs/airflow" in content, content[:2000]
    assert "split" in content.lower()


def test_killed_worker_task_is_retried_and_the_run_succeeds(stack, as_mlflow_admin):
    victim = "train_and_evaluate"  # the longest task (imports, autologging, model upload): several seconds
    try:
        run, killed = kill_worker_mid_task(
            stack.client, "wine_quality", victim,
            kill=lambda: stack.kill_role("airflow-worker"), restart=lambda: stack.start_role("airflow-worker"),
        )  # fmt: skip
    except TimeoutError as exc:
        raise AssertionError(f"{exc}\n{stack.logs()}") from None
    run_id = run["dag_run_id"]
    assert run["state"] == "success", stack.logs()
    assert killed["try_number"] >= 2, f"{victim} was not retried: {killed}"
    assert killed["state"] == "success"
    # Every MLflow run of the DAG run ended: the killed attempt's run (if it had one) is FAILED.
    client = MlflowClient(stack.mlflow)
    experiment = client.get_experiment_by_name("wine-quality")
    runs = client.search_runs([experiment.experiment_id], filter_string=f"tags.airflow_dag_run_id = '{run_id}'")
    statuses = [r.info.status for r in runs]
    assert "FINISHED" in statuses
    assert set(statuses) <= {"FINISHED", "FAILED"}, statuses
