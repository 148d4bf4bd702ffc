"""The distributed stack as real processes, shared by the stack tests (started once, stopped after them).

Each process of Procfile.distributed runs on its own (not under honcho), so a test can SIGKILL the
Celery worker in the middle of a task and start it again.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fsdl_tools.clients import AirflowClient
from fsdl_tools.launcher import LocalPlatform


class Stack(LocalPlatform):
    client: AirflowClient

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float) -> dict:
        try:
            return self.client.wait_for_run(dag_id, run_id, timeout)
        except TimeoutError as exc:
            raise AssertionError(f"{exc}\n{self.logs()}") from None


@pytest.fixture(scope="package")
def stack(tmp_path_factory) -> Iterator[Stack]:
    stack = Stack(
        tmp_path_factory.mktemp("stack"),
        mode="distributed",
        settings={
            "FSDL_OFFLINE_WEIGHTS": "1",
            "FSDL_IMAGE_SIZE": "96",
            "FSDL_CODE_VERSION": "stack-test",
            # Notice a killed worker's task within seconds, not the default five minutes.
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "20",
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
        },
    )
    try:
        stack.prepare()
        stack.start_roles()
        stack.wait_healthy(180)
        stack.client = stack.airflow_client()
        stack.client.wait_for_dags({"wine_quality", "intel_scenes_parallel", "feedback_sync"}, 120)
        yield stack
    except Exception as exc:
        raise AssertionError(f"{exc}\n{stack.logs()}") from exc
    finally:
        stack.stop()


@pytest.fixture
def as_mlflow_admin(stack, monkeypatch) -> None:
    """MLflow clients of this test talk to the stack's MLflow as its admin."""
    for name, value in stack.mlflow_env().items():
        monkeypatch.setenv(name, value)
