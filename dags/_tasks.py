"""Airflow glue shared by the DAG files: the scene tasks (so the sequential and parallel variants
run one code path), the training asset, and who is running (for MLflow tags).

A private module of the DAG folder (Airflow puts the folder on ``sys.path``; the leading underscore
keeps the integrity test from reading it as a DAG file). Imported by DAG files at parse time: only
``airflow.sdk`` here; every heavy import is inside a task. The work itself is in ``fsdl_lib``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from airflow.sdk import Asset, task

SCENES_TRAIN_ASSET = Asset("intel_scenes_train")
"""Updated by the feedback sync when it merged images; the parallel scene DAG runs on it."""


@dataclass(frozen=True)
class TaskIdentity:
    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    try_number: int

    @property
    def key(self) -> str:
        """Stable across retries of one task instance; distinct between instances."""
        suffix = f"[{self.map_index}]" if self.map_index >= 0 else ""
        return f"{self.dag_id}/{self.run_id}/{self.task_id}{suffix}"


def current_task() -> TaskIdentity:
    """The running task instance (call from inside a task)."""
    from airflow.sdk import get_current_context

    ti = get_current_context()["ti"]
    map_index = getattr(ti, "map_index", -1)
    return TaskIdentity(
        dag_id=ti.dag_id,
        run_id=ti.run_id,
        task_id=ti.task_id,
        map_index=-1 if map_index is None else int(map_index),
        try_number=int(getattr(ti, "try_number", 1) or 1),
    )


def lineage_tags(dataset_version: str) -> dict[str, str]:
    """Where a run or a version came from: its data, the code that ran, this DAG run."""
    from fsdl_lib.config import load_settings
    from fsdl_lib.tracking import lineage_tags as tags

    return tags(dataset_version, code=load_settings().code_version, dag_run_id=current_task().run_id)


def limit_threads() -> int:
    """Size this task's thread pools to its share of the machine: the cores divided by the slots of
    the executor it runs in (Celery: the worker's concurrency; local: the parallelism)."""
    import logging

    from airflow.configuration import conf

    from fsdl_lib.config import load_settings
    from fsdl_lib.resources import available_cores, threads_per_slot
    from fsdl_lib.resources import limit_threads as apply

    celery = "CeleryExecutor" in conf.get("core", "executor")
    slots = conf.getint("celery", "worker_concurrency") if celery else conf.getint("core", "parallelism")
    threads = load_settings().task_threads or threads_per_slot(slots)
    apply(threads)
    logging.getLogger(__name__).info(
        "%d threads for this task (%d cores, %d executor slots)", threads, available_cores(), slots
    )
    return threads


@task
def create_experiment() -> str:
    from fsdl_lib.config import load_settings
    from fsdl_lib.tracking import get_or_create_experiment

    return get_or_create_experiment(load_settings().scenes_experiment)


@task(execution_timeout=timedelta(hours=3))  # the first run over the full dataset is long
def create_dataset() -> dict[str, Any]:
    """Extract ResNet50 features of new or changed images (incremental); returns the dataset version."""
    from fsdl_lib.config import load_settings
    from fsdl_lib.scenes import create_dataset as run

    limit_threads()
    return run(load_settings()).as_dict()


@task
def register_best(results: list[dict[str, Any]], dataset: dict[str, Any]) -> dict[str, Any]:
    """Register the best candidate (validation F1) as a new `challenger` version."""
    from fsdl_lib.config import load_settings
    from fsdl_lib.scenes import SceneDataset
    from fsdl_lib.scenes import register_best as run

    return run(
        list(results), SceneDataset.from_dict(dataset), settings=load_settings(), dag_run_id=current_task().run_id
    )


def train(candidate: str, dataset: dict[str, Any], experiment_id: str) -> dict[str, Any]:
    """Train one candidate in the calling task (one MLflow run)."""
    from fsdl_lib.config import load_settings
    from fsdl_lib.scenes import SceneDataset, train_candidate

    limit_threads()
    me = current_task()
    key = me.key if me.map_index >= 0 else f"{me.key}/{candidate}"
    return train_candidate(
        candidate,
        SceneDataset.from_dict(dataset),
        experiment_id,
        settings=load_settings(),
        task_key=key,
        dag_run_id=me.run_id,
    )
