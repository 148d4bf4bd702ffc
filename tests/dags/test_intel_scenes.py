"""Both scene DAGs end to end with dag.test() on the sample photos, against a real MLflow server."""

import shutil

import mlflow
import pytest
from mlflow import MlflowClient

from fsdl_lib.candidates import CANDIDATES
from fsdl_lib.config import load_settings
from fsdl_lib.dataset import file_sha256, parse_manifest
from fsdl_lib.graph_store import graph_location
from fsdl_lib.tracking import resolve_alias
from tests.conftest import ROOT
from tests.dags.conftest import dag_bag, load_dag

pytestmark = pytest.mark.slow


@pytest.fixture
def scene_env(platform_data, monkeypatch):
    # Smaller inputs keep the layer quick; the code path is the one used at 224 px.
    monkeypatch.setenv("FSDL_IMAGE_SIZE", "96")
    return platform_data


def runs_of(dag_run_id: str):
    experiment = MlflowClient().get_experiment_by_name("intel-scenes")
    return MlflowClient().search_runs(
        [experiment.experiment_id], filter_string=f"tags.airflow_dag_run_id = '{dag_run_id}'"
    )


@pytest.mark.parametrize("dag_id", ["intel_scenes_parallel", "intel_scenes_sequential"])
def test_scene_dag_trains_candidates_and_registers_a_challenger(airflow_db, mlflow_server, scene_env, dag_id):
    run = load_dag(dag_id).test()
    assert run.state == "success", run

    version = resolve_alias("intel-scenes", "challenger")
    tags = version.tags
    assert tags["airflow_dag_run_id"] == run.run_id
    assert tags["backbone_id"] == "resnet50:random-seed0:resize96"
    assert tags["weights_id"] == "random-seed0"
    # The graph extraction ran is the one the version records, and MLflow holds it for serving.
    stored = graph_location(load_settings(), tags["backbone_id"])
    assert file_sha256(stored) == tags["backbone_graph_sha256"]
    graph_run = MlflowClient().get_run(tags["backbone_graph_run_id"])
    assert graph_run.data.tags["backbone_graph_sha256"] == tags["backbone_graph_sha256"]
    assert tags["code_version"] == "test-code"
    assert len(tags["dataset_version"]) == 64
    assert tags["candidate"] in CANDIDATES

    runs = runs_of(run.run_id)
    assert sorted(r.data.tags["candidate"] for r in runs) == sorted(CANDIDATES)
    assert {r.info.status for r in runs} == {"FINISHED"}
    # Started by hand: the full grid, every candidate from scratch.
    assert tags["training_path"] == "full_grid"
    assert {r.data.tags["training_path"] for r in runs} == {"full_grid"}
    assert {r.data.tags["converged"] for r in runs} == {"true"}
    for r in runs:
        for metric in ("accuracy", "f1", "precision", "recall"):
            assert 0.0 <= r.data.metrics[f"test_{metric}"] <= 1.0
        assert "val_f1" in r.data.metrics
        assert r.data.tags["dataset_version"] == tags["dataset_version"]
    best = max(runs, key=lambda r: r.data.metrics["val_f1"])
    assert version.run_id in {r.info.run_id for r in runs}
    assert float(tags["val_f1"]) == pytest.approx(best.data.metrics["val_f1"], abs=1e-4)
    # Chance is 1/6; random-weight features on 90 photos should do clearly better on average.
    assert max(r.data.metrics["test_f1"] for r in runs) > 0.25

    artifacts = {a.path for a in MlflowClient().list_artifacts(version.run_id)}
    assert "confusion_matrix_test.png" in artifacts
    manifest = parse_manifest(mlflow.artifacts.load_text(f"runs:/{version.run_id}/datasets/train_manifest.csv"))
    assert len(manifest) == 90
    info = mlflow.models.get_model_info(f"models:/intel-scenes/{version.version}")
    assert info.signature is not None
    model = mlflow.sklearn.load_model(f"models:/intel-scenes/{version.version}")
    assert set(model.classes_) == {"buildings", "forest", "glacier", "mountain", "sea", "street"}


def test_the_dataset_tasks_map_the_extraction_over_shards_and_the_next_run_finds_none(
    airflow_db, mlflow_server, scene_env, tmp_path, monkeypatch
):
    """plan_extraction -> extract_features (one mapped task per shard) -> create_dataset, run twice as
    the scene DAGs run them: the first extracts the 120 photos in three shards and takes them in; the
    second finds nothing new, so no shard is mapped (the task is skipped), and create_dataset still
    runs and describes the same dataset."""
    from airflow import settings

    from fsdl_lib.config import load_settings
    from fsdl_lib.feature_store import FeatureStore
    from fsdl_lib.scenes.dataset import feature_cache

    monkeypatch.setenv("FSDL_EXTRACT_SHARD_SIZE", "64")
    # A DAG folder of its own: the DAGs' _tasks module, and one DAG of only its dataset tasks.
    shutil.copy(ROOT / "dags" / "_tasks.py", tmp_path / "_tasks.py")
    monkeypatch.setattr(settings, "DAGS_FOLDER", str(tmp_path))  # the bundle dag.test() syncs
    dag_file = tmp_path / "scene_dataset_only.py"
    dag_file.write_text(
        "from datetime import UTC, datetime\n"
        "from airflow.sdk import dag\n"
        "from _tasks import scene_dataset\n\n"
        "@dag(schedule=None, start_date=datetime(2024, 1, 1, tzinfo=UTC))\n"
        "def scene_dataset_only():\n"
        "    scene_dataset()\n\n"
        "scene_dataset_only()\n"
    )
    bag = dag_bag(dag_file)
    assert not bag.import_errors, bag.import_errors
    dag = bag.get_dag("scene_dataset_only")

    def run_and_count() -> tuple[dict[str, list[str]], str]:
        run = dag.test()
        assert run.state == "success", run
        states: dict[str, list[str]] = {}
        for ti in run.get_task_instances():
            states.setdefault(ti.task_id, []).append(str(ti.state))
        train = FeatureStore(feature_cache(load_settings(), "train")).load()
        return states, train.version

    first, version = run_and_count()
    assert first == {
        "backbone_graph": ["success"],
        "plan_extraction": ["success"],
        "extract_features": ["success"] * 3,  # train: 64 + 26, test: 30
        "create_dataset": ["success"],
    }
    again, same = run_and_count()
    assert again["extract_features"] == ["skipped"]
    assert again["create_dataset"] == ["success"]
    assert same == version


def test_second_run_extracts_nothing_new(airflow_db, mlflow_server, scene_env):
    from fsdl_lib.config import load_settings
    from fsdl_lib.scenes import SceneDataset, create_dataset

    first = create_dataset(load_settings())
    again = create_dataset(load_settings())
    assert again.version == first.version
    assert again.splits["train"].extracted == 0
    assert again.splits["train"].images == 90
    assert SceneDataset.from_dict(again.as_dict()) == again  # what travels between tasks
