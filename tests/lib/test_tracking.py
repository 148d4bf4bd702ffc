"""MLflow helpers against a real tracking server (SQLite backend, proxied artifacts)."""

import uuid
from concurrent.futures import ThreadPoolExecutor

import mlflow
import numpy as np
import pytest
from mlflow import MlflowClient
from sklearn.linear_model import LogisticRegression

from fsdl_lib.dataset import parse_manifest, scan_split
from fsdl_lib.exceptions import ModelNotFoundError, RegistrationError
from fsdl_lib.tracking import (
    get_or_create_experiment,
    load_model,
    log_dataset,
    register_version,
    resolve_alias,
    tracking_uri,
)

pytestmark = pytest.mark.slow


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def logged_model_uri(mlflow_server) -> str:
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(40, 4)), np.array(["sea", "forest"] * 20)
    model = LogisticRegression().fit(x, y)
    mlflow.set_experiment(get_or_create_experiment("tracking-tests"))
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(model, name="model", input_example=x[:2], pip_requirements=["scikit-learn"])
    return info.model_uri


def test_get_or_create_is_safe_under_a_race(mlflow_server):
    name = unique("race")
    with ThreadPoolExecutor(8) as pool:
        ids = list(pool.map(lambda _: get_or_create_experiment(name), range(8)))
    assert len(set(ids)) == 1
    assert MlflowClient().get_experiment(ids[0]).name == name


def test_deleted_experiment_is_restored(mlflow_server):
    name = unique("deleted")
    experiment_id = get_or_create_experiment(name)
    MlflowClient().delete_experiment(experiment_id)
    assert get_or_create_experiment(name) == experiment_id
    assert MlflowClient().get_experiment(experiment_id).lifecycle_stage == "active"


def test_log_dataset_records_version_and_manifest(mlflow_server, scene_split):
    records = scan_split(scene_split)
    mlflow.set_experiment(get_or_create_experiment("tracking-tests"))
    with mlflow.start_run() as run:
        version = log_dataset(records, context="train", name="intel-scenes-train")
    client = MlflowClient()
    finished = client.get_run(run.info.run_id)
    assert finished.data.tags["dataset_version.train"] == version
    manifest = mlflow.artifacts.load_text(f"runs:/{run.info.run_id}/datasets/train_manifest.csv")
    assert parse_manifest(manifest) == records
    inputs = finished.inputs.dataset_inputs
    assert [i.dataset.name for i in inputs] == ["intel-scenes-train"]
    assert inputs[0].dataset.digest == version[:32]


def test_register_sets_tags_and_aliases_and_loads(logged_model_uri):
    name = unique("model")
    first = register_version(logged_model_uri, name, aliases=["challenger"], tags={"dataset_version": "abc"})
    assert first.tags["dataset_version"] == "abc"
    assert first.aliases == ["challenger"]
    second = register_version(logged_model_uri, name, aliases=["challenger", "production"])
    assert resolve_alias(name, "challenger").version == second.version
    loaded = load_model(name, "production")
    assert loaded.number == second.version
    assert loaded.name == name
    assert list(loaded.model.predict(np.zeros((1, 4)))) in (["sea"], ["forest"])


def test_failed_alias_rolls_everything_back(logged_model_uri):
    name = unique("rollback")
    first = register_version(logged_model_uri, name, aliases=["challenger"])
    with pytest.raises(RegistrationError, match="undone"):
        # "latest" is reserved by MLflow: the second alias fails after the first has moved.
        register_version(logged_model_uri, name, aliases=["challenger", "latest"])
    client = MlflowClient()
    assert [v.version for v in client.search_model_versions(f"name='{name}'")] == [first.version]
    assert resolve_alias(name, "challenger").version == first.version


def test_missing_alias_is_model_not_found(logged_model_uri):
    name = unique("noalias")
    register_version(logged_model_uri, name)
    with pytest.raises(ModelNotFoundError, match="production"):
        resolve_alias(name, "production")
    with pytest.raises(ModelNotFoundError):
        load_model(unique("absent"), "production")


def test_task_run_closes_stale_runs_and_fails_on_error(mlflow_server):
    from fsdl_lib.tracking import task_run

    experiment_id = get_or_create_experiment("task-runs")
    client = MlflowClient()
    key = unique("dag/run/task")
    killed = client.create_run(experiment_id, tags={"airflow_task_key": key})  # an attempt killed outright
    other = client.create_run(experiment_id, tags={"airflow_task_key": unique("other")})
    with pytest.raises(ZeroDivisionError), task_run(experiment_id, task_key=key) as failing:
        _ = 1 / 0
    assert client.get_run(killed.info.run_id).info.status == "FAILED"
    assert client.get_run(failing.info.run_id).info.status == "FAILED"
    assert client.get_run(other.info.run_id).info.status == "RUNNING"
    with task_run(experiment_id, task_key=key, run_name="retry") as retry:
        mlflow.log_metric("ok", 1)
    assert client.get_run(retry.info.run_id).info.status == "FINISHED"


def test_clients_follow_the_settings_not_mlflows_local_fallback(mlflow_server, monkeypatch):
    """With MLFLOW_TRACKING_URI unset, MLflow's own client would write to ./mlruns; the platform's
    clients talk to the server the settings derive from MLFLOW_BIND_HOST and MLFLOW_PORT."""
    port = mlflow_server.rsplit(":", 1)[1]
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("MLFLOW_PORT", port)
    assert tracking_uri() == f"http://127.0.0.1:{port}"
    name = unique("settings-uri")
    experiment_id = get_or_create_experiment(name)
    assert MlflowClient(mlflow_server).get_experiment(experiment_id).name == name
