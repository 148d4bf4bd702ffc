"""Airflow tasks shared by the scene DAGs, so the sequential and parallel variants run one code path.

Imported by DAG files at parse time: only ``airflow.sdk`` here; every heavy import is inside a task.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.sdk import Asset, task

SCENES_TRAIN_ASSET = Asset("intel_scenes_train")
"""Updated by the feedback sync when it merged images; the parallel scene DAG runs on it."""


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

    return run(load_settings())


@task
def register_best(results: list[dict[str, Any]], dataset: dict[str, Any]) -> dict[str, Any]:
    """Register the best candidate (validation F1) as a new `challenger` version."""
    from fsdl_lib.airflow_support import current_task
    from fsdl_lib.config import load_settings
    from fsdl_lib.scenes import register_best as run

    return run(list(results), dataset, settings=load_settings(), dag_run_id=current_task().run_id)


def train(candidate: str, dataset: dict[str, Any], experiment_id: str) -> dict[str, Any]:
    """Train one candidate in the calling task (one MLflow run)."""
    from fsdl_lib.airflow_support import current_task
    from fsdl_lib.config import load_settings
    from fsdl_lib.scenes import train_candidate

    me = current_task()
    key = me.key if me.map_index >= 0 else f"{me.key}/{candidate}"
    return train_candidate(
        candidate, dataset, experiment_id, settings=load_settings(), task_key=key, dag_run_id=me.run_id
    )
