"""
# Intel scenes, candidates in parallel

The same pipeline as `intel_scenes_sequential`, with **one mapped task per planned candidate** so
that executors with several slots (or Celery workers on several hosts) train them at the same time.

It is scheduled on two assets. Whenever the feedback sync merges new images into the training
split (`intel_scenes_train`), this DAG **refits the served version's candidate** on the grown
training set, starting from the served model's solution (minutes, whatever the dataset's size),
and registers a new `challenger`. When the drift watch finds the served version's inputs drifting
persistently and `FSDL_RETRAIN_ON_DRIFT` is on (`intel_scenes_drift`), or when triggered by hand, it
trains **every candidate** on the newest data (the `training` parameter chooses: `auto`, `full`,
`refit`). The tag `training_path` of each run and version says which ran.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import dag, get_current_context, task

from _tasks import (
    SCENES_DRIFT_ASSET,
    SCENES_TRAIN_ASSET,
    TRAINING_PARAM,
    compute_queue,
    compute_slots,
    create_experiment,
    plan_training,
    register_best,
    scene_dataset,
    train,
)
from fsdl_lib.candidates import CANDIDATES
from fsdl_lib.resources import COMPUTE_POOL, share


@dag(
    schedule=(SCENES_TRAIN_ASSET | SCENES_DRIFT_ASSET),
    start_date=datetime(2024, 1, 1, tzinfo=UTC),
    catchup=False,
    tags=["intel-scenes", "training", "mlflow", "flywheel"],
    default_args={
        "retries": 2,
        "retry_delay": timedelta(seconds=30),
        "execution_timeout": timedelta(minutes=30),
    },
    dagrun_timeout=timedelta(hours=4),
    max_active_runs=1,
    params={"training": TRAINING_PARAM},
    doc_md=__doc__,
)
def intel_scenes_parallel():
    # Each candidate takes its share of the compute pool's slots (one per core), as threads.
    @task(
        map_index_template="{{ candidate_name }}",
        pool=COMPUTE_POOL,
        pool_slots=share(compute_slots(), len(CANDIDATES)),
        **compute_queue(),
    )
    def train_candidate(candidate: str, plan: dict, dataset: dict, experiment_id: str) -> dict:
        get_current_context()["candidate_name"] = candidate
        return train(candidate, dataset, experiment_id, plan)

    planned = plan_training()  # one {"candidate", "plan"} per candidate to train
    dataset = scene_dataset()
    results = train_candidate.partial(dataset=dataset, experiment_id=create_experiment()).expand_kwargs(planned)
    register_best(results, dataset, planned)


intel_scenes_parallel()
