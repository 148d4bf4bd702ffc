"""
# Intel scenes, candidates in parallel

The same pipeline as `intel_scenes_sequential`, with **one mapped task per candidate** so that
executors with several slots (or Celery workers on several hosts) train them at the same time.

It is scheduled on the `intel_scenes_train` asset: whenever the feedback sync merges new images
into the training split, this DAG retrains and registers a new `challenger`. It can also be
triggered by hand.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import dag, get_current_context, task

from _tasks import SCENES_TRAIN_ASSET, create_dataset, create_experiment, register_best, train
from fsdl_lib.candidates import CANDIDATES


@dag(
    schedule=[SCENES_TRAIN_ASSET],
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
    doc_md=__doc__,
)
def intel_scenes_parallel():
    @task(map_index_template="{{ candidate_name }}")
    def train_candidate(candidate: str, dataset: dict, experiment_id: str) -> dict:
        get_current_context()["candidate_name"] = candidate
        return train(candidate, dataset, experiment_id)

    dataset = create_dataset()
    results = train_candidate.partial(dataset=dataset, experiment_id=create_experiment()).expand(
        candidate=list(CANDIDATES)
    )
    register_best(results, dataset)


intel_scenes_parallel()
