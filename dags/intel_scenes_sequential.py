"""
# Intel scenes, candidates in sequence

ResNet50 features of the Intel scene images, then six classical classifiers trained **one after
another in a single task**, then the best one registered. The parallel variant
(`intel_scenes_parallel`) runs the same code with one task per candidate.

1. **plan_training**: every candidate (the `training` parameter can ask for a refit of the served
   candidate only, as the parallel variant does after new feedback).
2. **backbone_graph**: the ResNet50 backbone exported as one ONNX graph, once per backbone id, kept
   in `processed/backbones/` and published to MLflow; extraction runs it, and so does serving.
3. **plan_extraction**, **extract_features**, **create_dataset**: incremental features of
   `raw/intel_scenes/{train,test}`: only new or changed images are extracted, in shards of
   `FSDL_EXTRACT_SHARD_SIZE` (one mapped task each, so workers on several hosts share them), then
   taken into the feature caches; returns the dataset version.
4. **create_experiment**: get or create the `intel-scenes` experiment.
5. **train_candidates**: LogisticRegression (C=1, C=2, L1), SVM (RBF), KNN (k=3, k=7), each one
   MLflow run with validation and test metrics, a confusion matrix and the model.
6. **register_best**: the best validation F1 becomes a new version of `intel-scenes` with the alias
   `challenger`. Promote it in the MLflow UI by giving it the alias `production`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import dag, task

from _tasks import (
    TRAINING_PARAM,
    compute_queue,
    compute_slots,
    create_experiment,
    plan_training,
    register_best,
    scene_dataset,
    train,
)
from fsdl_lib.resources import COMPUTE_POOL


@dag(
    schedule=None,
    start_date=datetime(2024, 1, 1, tzinfo=UTC),
    catchup=False,
    tags=["intel-scenes", "training", "mlflow"],
    default_args={
        "retries": 2,
        "retry_delay": timedelta(seconds=30),
        "execution_timeout": timedelta(minutes=45),
    },
    dagrun_timeout=timedelta(hours=4),
    max_active_runs=1,
    params={"training": TRAINING_PARAM},
    doc_md=__doc__,
)
def intel_scenes_sequential():
    @task(pool=COMPUTE_POOL, pool_slots=compute_slots(), **compute_queue())  # one candidate at a time, every core
    def train_candidates(dataset: dict, experiment_id: str, planned: list[dict]) -> list[dict]:
        return [train(entry["candidate"], dataset, experiment_id, entry["plan"]) for entry in planned]

    planned = plan_training()  # one {"candidate", "plan"} per candidate to train
    dataset = scene_dataset()
    register_best(train_candidates(dataset, create_experiment(), planned), dataset, planned)


intel_scenes_sequential()
