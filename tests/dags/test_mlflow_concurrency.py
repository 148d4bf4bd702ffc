"""Six candidate-like processes log to one MLflow server (SQLite backend) at the same time."""

import subprocess
import sys
import textwrap
import uuid

import pytest
from mlflow import MlflowClient

pytestmark = pytest.mark.slow

CANDIDATE = textwrap.dedent(
    """
    import sys
    import mlflow
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from fsdl_lib.tracking import get_or_create_experiment, log_sklearn_model, task_run

    experiment, index = sys.argv[1], int(sys.argv[2])
    experiment_id = get_or_create_experiment(experiment)
    rng = np.random.default_rng(index)
    x, y = rng.normal(size=(60, 8)), np.array(["sea", "forest", "street"] * 20)
    with task_run(experiment_id, task_key=f"concurrency/{index}", run_name=f"candidate-{index}") as run:
        mlflow.log_params({"index": index, "C": 1.0 + index})
        for step in range(30):
            mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
        mlflow.log_metrics({"val_f1": 0.1 * index, "test_f1": 0.05 * index})
        mlflow.log_text("x" * 10_000, "notes/big.txt")
        log_sklearn_model(LogisticRegression().fit(x, y), x[:2])
    print(run.info.run_id)
    """
)


def test_six_processes_log_at_once_without_locking_or_loss(mlflow_server):
    experiment = f"concurrency-{uuid.uuid4().hex[:8]}"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CANDIDATE, experiment, str(i)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(6)
    ]
    outputs = [p.communicate(timeout=300) for p in procs]
    for proc, (_, err) in zip(procs, outputs, strict=True):
        assert "database is locked" not in err
        assert proc.returncode == 0, err[-2000:]
    run_ids = {out.strip().splitlines()[-1] for out, _ in outputs}
    assert len(run_ids) == 6

    client = MlflowClient()
    (exp,) = [e for e in client.search_experiments() if e.name == experiment]
    runs = client.search_runs([exp.experiment_id])
    assert {r.info.run_id for r in runs} == run_ids
    for r in runs:
        assert r.info.status == "FINISHED"
        index = int(r.data.params["index"])
        assert r.data.metrics["val_f1"] == pytest.approx(0.1 * index)
        assert len(client.get_metric_history(r.info.run_id, "loss")) == 30
        assert {a.path for a in client.list_artifacts(r.info.run_id)} >= {"notes"}
    assert len(client.search_logged_models([exp.experiment_id])) == 6
