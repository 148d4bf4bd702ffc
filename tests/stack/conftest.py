"""The distributed stack as real processes, shared by the stack tests (started once, stopped after them)."""

from __future__ import annotations

import os
import secrets
import shlex
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from fsdl_lib.platform_client import AirflowClient, local_logins
from tests.compose.test_compose import procfile
from tests.conftest import ROOT, free_port, stop_process_group, wait_for_http


class Stack:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.db = f"fsdl_stack_{secrets.token_hex(4)}"
        self.ports = {name: free_port() for name in ("airflow", "mlflow", "webapp", "flower", "logs")}
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("FSDL_", "AIRFLOW", "MLFLOW_", "WEBAPP_"))}
        self.env.update(
            FSDL_MODE="distributed",
            FSDL_DATA_DIR=str(tmp / "data"),
            FSDL_STORAGE_DIR=str(tmp / "storage"),
            FSDL_POSTGRES_URL=f"postgresql+psycopg2://postgres@127.0.0.1:5432/{self.db}",
            FSDL_REDIS_URL=f"redis://127.0.0.1:6379/{7 + secrets.randbelow(8)}",
            FSDL_OFFLINE_WEIGHTS="1",
            FSDL_IMAGE_SIZE="96",
            FSDL_CODE_VERSION="stack-test",
            AIRFLOW_PORT=str(self.ports["airflow"]),
            MLFLOW_PORT=str(self.ports["mlflow"]),
            WEBAPP_PORT=str(self.ports["webapp"]),
            FLOWER_PORT=str(self.ports["flower"]),
            AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT=str(self.ports["logs"]),
            # Notice a killed worker's task within seconds, not the default five minutes.
            AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT="20",
            AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL="5",
        )
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.airflow = f"http://127.0.0.1:{self.ports['airflow']}"
        self.flower = f"http://127.0.0.1:{self.ports['flower']}"
        self.mlflow = f"http://127.0.0.1:{self.ports['mlflow']}"
        self.logins: dict[str, str] = {}

    def prepare(self) -> None:
        subprocess.run([str(ROOT / "scripts" / "up.sh"), "--prepare-only"], env=self.env, check=True, timeout=300)
        self.logins = local_logins(self.tmp / "storage")
        self.client = AirflowClient(self.airflow, "admin", self.logins["AIRFLOW_ADMIN_PASSWORD"])

    @property
    def flower_auth(self) -> tuple[str, str]:
        return "admin", self.logins["FLOWER_PASSWORD"]

    def mlflow_env(self) -> dict[str, str]:
        """The environment of an MLflow client logged in as the admin (a person promoting versions)."""
        return {
            "MLFLOW_TRACKING_URI": self.mlflow,
            "MLFLOW_TRACKING_USERNAME": "admin",
            "MLFLOW_TRACKING_PASSWORD": self.logins["MLFLOW_AUTH_ADMIN_PASSWORD"],
        }

    def start(self, role: str) -> None:
        command = procfile(ROOT / "Procfile.distributed")[role]
        script = f". {shlex.quote(str(ROOT / 'scripts' / 'local-env.sh'))} && exec {command}"
        log = (self.tmp / f"{role}.log").open("ab")
        self.procs[role] = subprocess.Popen(
            ["bash", "-c", script], env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def kill(self, role: str) -> None:
        os.killpg(self.procs[role].pid, signal.SIGKILL)
        self.procs[role].wait()

    def stop(self) -> None:
        for proc in self.procs.values():
            stop_process_group(proc)
        subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-c", f"DROP DATABASE IF EXISTS {self.db}"],
                       capture_output=True, check=False)  # fmt: skip

    def logs(self) -> str:
        return "\n".join(f"--- {p.name} ---\n{p.read_text(errors='replace')[-2500:]}" for p in self.tmp.glob("*.log"))

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float) -> dict:
        try:
            return self.client.wait_for_run(dag_id, run_id, timeout)
        except TimeoutError as exc:
            raise AssertionError(f"{exc}\n{self.logs()}") from None


@pytest.fixture(scope="package")
def stack(tmp_path_factory) -> Iterator[Stack]:
    stack = Stack(tmp_path_factory.mktemp("stack"))
    try:
        stack.prepare()
        for role in procfile(ROOT / "Procfile.distributed"):
            stack.start(role)
        for url in (f"{stack.airflow}/api/v2/monitor/health", f"{stack.mlflow}/health",
                    f"http://127.0.0.1:{stack.ports['webapp']}/healthz", f"{stack.flower}/healthcheck"):  # fmt: skip
            wait_for_http(url, 180)
        stack.client.login()
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
