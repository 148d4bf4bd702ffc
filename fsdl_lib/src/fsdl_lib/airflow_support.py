"""Small helpers for DAG tasks: who is running, as tags for MLflow. Imported inside tasks only."""

from __future__ import annotations

from dataclasses import dataclass


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
