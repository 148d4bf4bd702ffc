"""Candidate selection and guarded promotion of the scene workload."""

import math

import mlflow
import numpy as np
import pytest
from mlflow import MlflowClient

from fsdl_lib.candidates import CANDIDATES, build_pipeline, fit
from fsdl_lib.config import load_settings
from fsdl_lib.exceptions import NoUsableCandidateError
from fsdl_lib.scenes import create_dataset
from fsdl_lib.scenes.registration import promote_if_better, select_best
from fsdl_lib.scenes.training import classification_metrics, validation_split
from fsdl_lib.seeding import seed_scenes
from fsdl_lib.tracking import get_or_create_experiment, log_sklearn_model, register_version, resolve_alias


def result(name, val_f1, test_f1=0.5, usable=True):
    return {"candidate": name, "usable": usable, "val_f1": val_f1, "test_f1": test_f1, "run_id": name}


def test_best_validation_f1_wins_whatever_the_test_score():
    results = [result("logreg_c1", 0.50, test_f1=0.90), result("svm_rbf", 0.60, test_f1=0.10)]
    assert select_best(results)["candidate"] == "svm_rbf"


def test_ties_go_to_the_earlier_candidate_whatever_the_input_order():
    results = [result("knn_7", 0.5), result("logreg_c2", 0.5), result("svm_rbf", 0.5)]
    assert select_best(results)["candidate"] == "logreg_c2"
    assert select_best(list(reversed(results)))["candidate"] == "logreg_c2"


def test_unusable_and_nan_candidates_are_ignored():
    results = [
        result("logreg_c1", 0.9, usable=False),
        result("logreg_c2", math.nan),
        result("knn_3", 0.2),
    ]
    assert select_best(results)["candidate"] == "knn_3"


def test_no_usable_candidate_fails_clearly():
    failed = [{"candidate": "svm_rbf", "usable": False, "error": "boom"}, result("knn_3", math.nan)]
    with pytest.raises(NoUsableCandidateError, match="svm_rbf: boom"):
        select_best(failed)
    with pytest.raises(NoUsableCandidateError, match="none ran"):
        select_best([])


def test_validation_split_is_stratified_and_disjoint_from_test(tmp_path, sample_dir, small_extractor):
    from fsdl_lib.feature_store import FeatureStore

    seed_scenes(sample_dir, tmp_path)
    train, _ = FeatureStore(tmp_path / "train.npz").update(tmp_path / "train", small_extractor)
    x_fit, x_val, y_fit, y_val = validation_split(train)
    assert len(x_fit) + len(x_val) == 90
    assert sorted(set(y_val)) == sorted(set(y_fit)) == sorted({r.label for r in train.records})
    again = validation_split(train)
    np.testing.assert_array_equal(again[1], x_val)


@pytest.fixture
def scenes_settings(tmp_path, sample_dir, monkeypatch):
    seed_scenes(sample_dir, tmp_path / "data" / "raw" / "intel_scenes")
    monkeypatch.setenv("FSDL_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("FSDL_OFFLINE_WEIGHTS", "1")
    monkeypatch.setenv("FSDL_IMAGE_SIZE", "64")
    monkeypatch.setenv("FSDL_SCENES_MODEL_NAME", f"promotion-{tmp_path.name[-12:]}")
    return load_settings()


@pytest.mark.slow
def test_promotion_only_when_the_challenger_beats_production(mlflow_server, scenes_settings, monkeypatch):
    info = create_dataset(scenes_settings)
    train, test = info.load("train"), info.load("test")
    name = scenes_settings.scenes_model_name
    mlflow.set_experiment(experiment_id=get_or_create_experiment("promotion-tests"))

    def register(model):
        with mlflow.start_run() as run:
            log_sklearn_model(model, test.features[:2])
        return register_version(
            f"runs:/{run.info.run_id}/model", name, tags={"backbone_id": str(info.backbone)}
        ).version

    good, weak = build_pipeline(CANDIDATES["logreg_c1"]), build_pipeline(CANDIDATES["knn_3"])
    fit(good, train.features, train.labels)
    fit(weak, train.features, np.random.default_rng(0).permutation(train.labels))
    good_f1 = classification_metrics(test.labels, good.predict(test.features))["f1"]
    weak_f1 = classification_metrics(test.labels, weak.predict(test.features))["f1"]
    assert good_f1 > weak_f1

    weak_version = register(weak)
    first = promote_if_better(weak_version, info, settings=scenes_settings)
    assert first.promoted
    assert first.reason == "no production version yet"
    assert resolve_alias(name, "production").version == weak_version

    good_version = register(good)
    decision = promote_if_better(good_version, info, settings=scenes_settings)
    assert decision.promoted
    assert decision.production_f1 == pytest.approx(weak_f1)
    assert decision.challenger_f1 == pytest.approx(good_f1)
    assert resolve_alias(name, "production").version == good_version

    worse_version = register(weak)
    refused = promote_if_better(worse_version, info, settings=scenes_settings)
    assert not refused.promoted
    assert resolve_alias(name, "production").version == good_version
    tags = MlflowClient().get_model_version(name, worse_version).tags
    assert tags["promotion_decision"] == "challenger does not beat production"
    assert float(tags["promotion_production_test_f1"]) == pytest.approx(good_f1, abs=1e-4)

    # A challenger that crashes the process predicting with it (were its types trusted) is refused
    # before the guard predicts with it here; production stays.
    from fsdl_lib import tracking
    from fsdl_lib.exceptions import UnsafeModelError
    from tests.conftest import KDTREE_TYPES, crashing_knn

    monkeypatch.setattr(tracking, "TRUSTED_TYPES", KDTREE_TYPES)
    with mlflow.start_run() as run:  # logged without an input example: predicting with it here would crash
        mlflow.sklearn.log_model(
            crashing_knn(train.features, train.labels), name="model",
            serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_SKOPS, skops_trusted_types=list(KDTREE_TYPES),
        )  # fmt: skip
    tags = {"backbone_id": str(info.backbone)}
    crash_version = register_version(f"runs:/{run.info.run_id}/model", name, tags=tags).version
    with pytest.raises(UnsafeModelError, match="SIGSEGV"):
        promote_if_better(crash_version, info, settings=scenes_settings)
    assert resolve_alias(name, "production").version == good_version


@pytest.mark.slow
def test_a_failing_estimator_fails_its_run_not_the_task(mlflow_server, scenes_settings, monkeypatch):
    """The candidate is reported unusable with the reason, its MLflow run ends FAILED with the
    failure tagged, and no run is left open for the next candidate."""
    from fsdl_lib.scenes import training

    info = create_dataset(scenes_settings)
    experiment = get_or_create_experiment("failing-candidates")

    from sklearn.base import BaseEstimator, ClassifierMixin
    from sklearn.pipeline import Pipeline

    class Broken(ClassifierMixin, BaseEstimator):
        def fit(self, *args):
            raise ValueError("the solver diverged")

    working = training.build_pipeline
    monkeypatch.setattr(training, "build_pipeline", lambda candidate: Pipeline([("classify", Broken())]))
    failed = training.train_candidate(
        "svm_rbf", info, experiment, settings=scenes_settings, task_key="t/1", dag_run_id="manual"
    )
    assert failed["usable"] is False
    assert failed["error"] == "the solver diverged"
    run = MlflowClient().get_run(failed["run_id"])
    assert run.info.status == "FAILED"
    assert run.data.tags["failure"] == "ValueError: the solver diverged"
    assert mlflow.active_run() is None

    monkeypatch.setattr(training, "build_pipeline", working)
    good = training.train_candidate(
        "logreg_c1", info, experiment, settings=scenes_settings, task_key="t/2", dag_run_id="manual"
    )
    assert good["usable"] is True
    assert MlflowClient().get_run(good["run_id"]).info.status == "FINISHED"


@pytest.mark.slow
def test_new_feedback_refits_the_served_candidate_from_its_solution(mlflow_server, scenes_settings, caplog):
    from fsdl_lib.exceptions import FsdlError
    from fsdl_lib.scenes import plan_training, register_best, train_candidate

    caplog.set_level("INFO")
    info = create_dataset(scenes_settings)
    name = scenes_settings.scenes_model_name
    client = MlflowClient()
    with pytest.raises(FsdlError, match="must be one of"):
        plan_training(scenes_settings, requested="sometimes")

    # Nothing served yet: new feedback falls back to the full grid; an explicit refit says why not.
    fallback = plan_training(scenes_settings, new_feedback=True)
    assert fallback.path == "full_grid"
    assert fallback.candidates == tuple(CANDIDATES)
    assert "no production version" in fallback.reason
    with pytest.raises(FsdlError, match=r"cannot refit: .* no production version"):
        plan_training(scenes_settings, requested="refit")

    experiment = get_or_create_experiment("refit-tests")
    first = train_candidate("logreg_c2", info, experiment, settings=scenes_settings, task_key="t/1", dag_run_id="a")
    served = register_best([first], info, settings=scenes_settings, dag_run_id="a")["version"]
    client.set_registered_model_alias(name, "production", served)

    assert plan_training(scenes_settings, new_feedback=False).path == "full_grid"
    assert plan_training(scenes_settings, requested="full", new_feedback=True).path == "full_grid"
    plan = plan_training(scenes_settings, new_feedback=True)
    assert (plan.path, plan.candidates, plan.warm_start) == ("refit", ("logreg_c2",), served)
    drifted = plan_training(scenes_settings, new_feedback=True, drifted=True)
    assert drifted.path == "full_grid"
    assert "drifted" in drifted.reason
    assert plan_training(scenes_settings, requested="refit", drifted=True).path == "refit"  # asked for: done

    # Every training run keeps its drift reference: a sample of its training features, its test confidences.
    from fsdl_lib.tracking import load_drift_reference

    reference = load_drift_reference(first["run_id"])
    assert reference.features.shape == (len(info.load("train")), info.load("train").features.shape[1])
    assert reference.class_counts.sum() == len(info.load("train"))
    assert len(reference.confidence) == len(info.load("test"))
    assert ((reference.confidence > 0) & (reference.confidence <= 1)).all()

    refit = train_candidate(
        "logreg_c2", info, experiment, settings=scenes_settings, task_key="t/2", dag_run_id="b", plan=plan
    )
    assert "logreg_c2: warm start from the served model" in caplog.text
    run = client.get_run(refit["run_id"])
    assert run.data.tags["training_path"] == "refit"
    assert run.data.tags["warm_start_version"] == served
    assert run.data.tags["converged"] == "true"
    # It starts at the served solution of the same data: the solver has (almost) nothing left to do.
    cold = client.get_run(first["run_id"]).data.metrics["refit_iterations"]
    assert run.data.metrics["refit_iterations"] < cold / 4
    # Same data, convex problem: the refit reaches the served model again.
    assert refit["test_f1"] == pytest.approx(first["test_f1"], abs=0.04)
    summary = register_best([refit], info, settings=scenes_settings, dag_run_id="b", plan=plan)
    tags = client.get_model_version(name, summary["version"]).tags
    assert (tags["training_path"], tags["warm_start_version"]) == ("refit", served)
    assert client.get_model_version(name, served).tags["training_path"] == "full_grid"

    # A served version of another backbone cannot seed a refit on these features.
    client.set_model_version_tag(name, served, "backbone_id", "resnet50-other")
    other = plan_training(scenes_settings, new_feedback=True)
    assert other.path == "full_grid"
    assert "backbone resnet50-other" in other.reason


def test_the_dataset_made_on_the_object_store_equals_the_one_made_on_a_folder(
    tmp_path, sample_dir, object_store, monkeypatch
):
    """create_dataset on a bucket prefix (FSDL_DATA_URL) gives the folder's dataset version, and the
    training tasks read the features it wrote back from the description it hands them."""
    from fsdl_lib.scenes import SceneDataset
    from tests.conftest import data_environment

    monkeypatch.setenv("FSDL_OFFLINE_WEIGHTS", "1")
    monkeypatch.setenv("FSDL_IMAGE_SIZE", "64")
    made = {}
    for name, root in (
        ("folder", tmp_path / "data"),
        ("bucket", object_store.bucket("data", "workers") / tmp_path.name),
    ):
        seed_scenes(sample_dir, root / "raw" / "intel_scenes")
        for variable, value in data_environment(root).items():
            monkeypatch.setenv(variable, value)
        made[name] = create_dataset(load_settings())
    folder, bucket = made["folder"], made["bucket"]
    assert bucket.version == folder.version
    assert str(bucket.splits["train"].cache).startswith("s3://fsdl-data/")
    again = SceneDataset.from_dict(bucket.as_dict())  # as a training task gets it, in another process
    np.testing.assert_array_equal(again.load("train").features, folder.load("train").features)


def test_extraction_sharded_over_tasks_gives_what_one_task_gives(tmp_path, sample_dir, data_root, monkeypatch):
    """plan_extraction cuts the new images into shards, each extract_shard (a mapped task, in any
    order, retried or not) keeps its own, and create_dataset takes them in: the same dataset version
    and the very same features as one create_dataset that extracts everything itself; the shards'
    files are gone after (on the store the workers' identity may delete them, and nothing else)."""
    from fsdl_lib import storage
    from fsdl_lib.scenes.dataset import extract_shard, plan_extraction, shards_folder
    from tests.conftest import data_environment

    def use(root):
        monkeypatch.delenv("FSDL_DATA_URL", raising=False)
        for variable, value in data_environment(root).items():
            monkeypatch.setenv(variable, value)
        return load_settings()

    monkeypatch.setenv("FSDL_OFFLINE_WEIGHTS", "1")
    monkeypatch.setenv("FSDL_IMAGE_SIZE", "64")
    monkeypatch.setenv("FSDL_EXTRACT_SHARD_SIZE", "20")  # rounded up to 64: whole batches
    seed_scenes(sample_dir, tmp_path / "one" / "raw" / "intel_scenes")
    whole = create_dataset(use(tmp_path / "one"))

    seed_scenes(sample_dir, data_root / "raw" / "intel_scenes")
    settings = use(data_root)
    shards = plan_extraction(settings)
    assert [(s["split"], len(s["records"])) for s in shards] == [("train", 64), ("train", 26), ("test", 30)]
    results = [extract_shard(settings, shard) for shard in reversed(shards)]
    assert extract_shard(settings, shards[0]) == results[-1]  # a retried shard finds its own work
    assert len(storage.files(shards_folder(settings))) == 3
    sharded = create_dataset(settings, results)

    assert sharded.version == whole.version
    for split in ("train", "test"):
        assert sharded.splits[split].extracted == whole.splits[split].extracted
        np.testing.assert_array_equal(sharded.load(split).features, whole.load(split).features)
    assert storage.files(shards_folder(settings)) == {}
    assert plan_extraction(settings) == []  # nothing new: nothing to extract
    assert create_dataset(settings, []).version == whole.version
