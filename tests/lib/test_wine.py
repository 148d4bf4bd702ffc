"""The wine workload (fsdl_lib.wine): checks on the CSV, the split and its version, one MLflow run
that trains and scores, registration. The DAG over it runs in tests/dags/test_wine_quality.py."""

from __future__ import annotations

import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient

from fsdl_lib import wine
from fsdl_lib.config import load_settings
from fsdl_lib.tracking import get_or_create_experiment, resolve_alias
from tests.conftest import ROOT

WINE_CSV = ROOT / "data" / "raw" / "wine" / "winequality-red.csv"


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return wine.load_wine(WINE_CSV)


def test_the_shipped_csv_loads_with_every_column(frame):
    assert list(frame.columns) == [*wine.FEATURES, wine.TARGET]
    assert len(frame) == 1599


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a,b\n1,2\n", "lacks the columns"),
        (";".join([*wine.FEATURES, wine.TARGET]) + "\n" + ";".join(["1"] * 12) + "\n", "only 1 rows"),
        (
            ";".join([*wine.FEATURES, wine.TARGET]) + "\n" + "".join(";".join(["x"] * 12) + "\n" for _ in range(30)),
            "non-numeric",
        ),
    ],
    ids=["comma-separated", "too-short", "text-values"],
)
def test_unusable_csv_is_refused_saying_why(tmp_path, text, message):
    path = tmp_path / "wine.csv"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        wine.load_wine(path)
    with pytest.raises(FileNotFoundError):
        wine.load_wine(tmp_path / "missing.csv")


def test_split_is_reproducible_and_its_version_follows_the_content(tmp_path, frame):
    first = wine.split_wine(frame, tmp_path / "a")
    again = wine.split_wine(frame, tmp_path / "b")
    assert first.version == again.version
    assert first.train.read_bytes() == again.train.read_bytes()
    train, test = first.load()
    assert len(train) + len(test) == len(frame)
    assert len(test) == pytest.approx(len(frame) * wine.TEST_FRACTION, abs=1)
    other_seed = wine.split_wine(frame, tmp_path / "c", seed=7)
    assert other_seed.version != first.version
    changed = frame.copy()
    changed.loc[changed.index[0], "alcohol"] += 0.1
    assert wine.split_wine(changed, tmp_path / "d").version != first.version
    assert wine.WineSplit.from_dict(first.as_dict()) == first
    assert not list((tmp_path / "a").glob(".*"))  # no partial files left behind


@pytest.mark.slow
def test_one_run_trains_scores_and_registers(tmp_path, frame, mlflow_server):
    split = wine.split_wine(frame, tmp_path)
    experiment = get_or_create_experiment("wine-lib-test")
    tags = {"dataset_version": split.version, "airflow_dag_run_id": "manual"}
    run_id, metrics = wine.train_and_evaluate(
        split, experiment, alpha=0.1, l1_ratio=0.2, task_key="wine/manual/train", tags=tags
    )
    assert mlflow.active_run() is None
    run = MlflowClient().get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["alpha"] == "0.1"  # autologged inside the run that trained
    assert run.data.metrics["test_rmse"] == pytest.approx(metrics["rmse"])
    assert 0.4 < metrics["rmse"] < 1.0
    assert metrics["mae"] < metrics["rmse"]
    assert run.data.tags["dataset_version"] == split.version
    runs = MlflowClient().search_runs([experiment])
    assert [r.info.run_id for r in runs] == [run_id]  # evaluation opened no second run

    settings = load_settings({"FSDL_WINE_MODEL_NAME": "wine-lib-test"})
    registered = wine.register(run_id, metrics, tags, settings=settings)
    version = resolve_alias("wine-lib-test", "challenger")
    assert registered["version"] == str(version.version)
    assert version.run_id == run_id
    assert float(version.tags["test_rmse"]) == pytest.approx(metrics["rmse"], abs=1e-4)
    again = wine.register(run_id, metrics, tags, settings=settings)  # a retried task registers nothing new
    assert again["version"] == registered["version"]
