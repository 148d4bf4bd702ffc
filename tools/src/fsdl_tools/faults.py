"""Faults inflicted on a running platform, written once for every run mode that the tests kill."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fsdl_tools.clients import AirflowClient, wait_until


def kill_worker_mid_task(
    airflow: AirflowClient,
    dag_id: str,
    task_id: str,
    *,
    kill: Callable[[], None],
    restart: Callable[[], None],
    timeout: float = 600,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Trigger ``dag_id``, kill the Celery worker (``kill``) while ``task_id`` runs on it, start a worker
    again (``restart``) and wait for the run to end. Returns the run and the killed task's instance:
    its ``try_number`` says whether the scheduler noticed and retried it."""
    run_id = airflow.trigger(dag_id)
    wait_until(
        lambda: (airflow.task_instance(dag_id, run_id, task_id) or {}).get("state") == "running",
        300,
        f"{dag_id}.{task_id} running",
        interval=0.3,
        describe=lambda: str({ti["task_id"]: ti["state"] for ti in airflow.task_instances(dag_id, run_id)}),
    )
    kill()
    restart()
    run = airflow.wait_for_run(dag_id, run_id, timeout)
    killed = airflow.task_instance(dag_id, run_id, task_id)
    assert killed is not None
    return run, killed
