"""The wine DAG end to end with dag.test(), against a real MLflow server."""

import pytest
from mlflow import MlflowClient

from fsdl_lib.tracking import resolve_alias
from tests.dags.conftest import load_dag

pytestmark = pytest.mark.slow


def test_wine_dag_registers_a_challenger(airflow_db, mlflow_server, platform_data):
    dag = load_dag("wine_quality")
    run = dag.test(run_conf={"alpha": 0.1, "l1_ratio": 0.2})
    assert run.state == "success", run

    version = resolve_alias("wine-quality", "challenger")
    assert version.tags["dataset_version"]
    assert version.tags["code_version"] == "test-code"
    assert version.tags["airflow_dag_run_id"] == run.run_id

    client = MlflowClient()
    training = client.get_run(version.run_id)
    assert training.info.status == "FINISHED"
    assert training.data.params["alpha"] == "0.1"
    assert training.data.params["l1_ratio"] == "0.2"
    metrics = training.data.metrics
    assert 0.4 < metrics["test_rmse"] < 1.0
    assert 0.0 < metrics["test_r2"] < 0.6
    assert metrics["test_mae"] < metrics["test_rmse"]
    assert (platform_data / "processed" / "wine" / "train.csv").is_file()

    model = client.get_logged_model(training.outputs.model_outputs[0].model_id)
    assert model.model_id
    info = __import__("mlflow").models.get_model_info(f"models:/wine-quality/{version.version}")
    assert info.signature is not None
    assert info.saved_input_example_info is not None
