"""The distributed mode for real: Postgres, Redis, Celery worker, Flower, API server, MLflow, web app.

Each process of Procfile.distributed runs on its own here (not under honcho), so the test can
SIGKILL the Celery worker in the middle of a task and start it again.
"""

from __future__ import annotations

import os
import secrets
import shlex
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from mlflow import MlflowClient

from tests.compose.test_compose import procfile
from tests.conftest import ROOT, free_port, stop_process_group, wait_for_http

pytestmark = pytest.mark.slow


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
        self.headers: dict[str, str] = {}

    def prepare(self) -> None:
        subprocess.run([str(ROOT / "scripts" / "up.sh"), "--prepare-only"], env=self.env, check=True, timeout=300)

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

    def api(self, method: str, path: str, **kwargs):
        response = requests.request(method, f"{self.airflow}/api/v2{path}", headers=self.headers, timeout=30, **kwargs)
        response.raise_for_status()
        return response.json()

    def login(self) -> None:
        response = requests.post(
            f"{self.airflow}/auth/token", json={"username": "admin", "password": "admin"}, timeout=30
        )
        response.raise_for_status()
        self.headers = {"Authorization": f"Bearer {response.json()['access_token']}"}

    def trigger(self, dag_id: str) -> str:
        return self.api("POST", f"/dags/{dag_id}/dagRuns", json={"logical_date": None})["dag_run_id"]

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            run = self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}")
            if run["state"] in ("success", "failed"):
                return run
            time.sleep(3)
        raise AssertionError(f"{dag_id} {run_id} did not finish in {timeout} s\n{self.logs()}")

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        return self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances")["task_instances"]


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[Stack]:
    stack = Stack(tmp_path_factory.mktemp("stack"))
    try:
        stack.prepare()
        for role in procfile(ROOT / "Procfile.distributed"):
            stack.start(role)
        for url in (f"{stack.airflow}/api/v2/monitor/health", f"http://127.0.0.1:{stack.ports['mlflow']}/health",
                    f"http://127.0.0.1:{stack.ports['webapp']}/healthz", f"{stack.flower}/api/workers"):  # fmt: skip
            wait_for_http(url, 180)
        stack.login()
        deadline = time.monotonic() + 120
        while {d["dag_id"] for d in stack.api("GET", "/dags")["dags"]} < {"wine_quality", "intel_scenes_parallel"}:
            assert time.monotonic() < deadline, "DAGs were not parsed"
            time.sleep(2)
        yield stack
    except Exception as exc:
        raise AssertionError(f"{exc}\n{stack.logs()}") from exc
    finally:
        stack.stop()


def flower_workers(stack: Stack) -> dict:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        workers = requests.get(f"{stack.flower}/api/workers", params={"refresh": "1"}, timeout=30).json()
        if workers:
            return workers
        time.sleep(2)
    raise AssertionError("Flower sees no Celery worker")


def test_dags_run_on_the_celery_worker_and_register_models(stack):
    workers = flower_workers(stack)
    (worker_name,) = workers
    assert [q["name"] for q in workers[worker_name]["active_queues"]] == ["default"]

    wine = stack.trigger("wine_quality")
    scenes = stack.trigger("intel_scenes_parallel")
    assert stack.wait_for_run("wine_quality", wine, 600)["state"] == "success", stack.logs()
    assert stack.wait_for_run("intel_scenes_parallel", scenes, 900)["state"] == "success", stack.logs()

    hostname = worker_name.split("@", 1)[1]
    for dag_id, run_id in (("wine_quality", wine), ("intel_scenes_parallel", scenes)):
        instances = stack.task_instances(dag_id, run_id)
        assert instances
        for ti in instances:
            assert ti["state"] == "success"
            assert ti["queue"] == "default"
            assert ti["hostname"] == hostname, ti
            assert ti["executor"] in (None, "CeleryExecutor") or "Celery" in str(ti["executor"])
    tasks = requests.get(f"{stack.flower}/api/tasks", timeout=30).json()
    assert sum(t["state"] == "SUCCESS" for t in tasks.values()) >= 6 + 1 + 3

    client = MlflowClient(f"http://127.0.0.1:{stack.ports['mlflow']}")
    wine_version = client.get_model_version_by_alias("wine-quality", "challenger")
    scenes_version = client.get_model_version_by_alias("intel-scenes", "challenger")
    assert wine_version.tags["airflow_dag_run_id"] == wine
    assert scenes_version.tags["airflow_dag_run_id"] == scenes
    assert scenes_version.tags["backbone_id"] == "resnet50:random-seed0:resize96"


def test_killed_worker_task_is_retried_and_the_run_succeeds(stack):
    run_id = stack.trigger("wine_quality")
    deadline = time.monotonic() + 300
    victim = None
    while victim is None:
        assert time.monotonic() < deadline, "no task of the run started"
        running = [ti for ti in stack.task_instances("wine_quality", run_id) if ti["state"] == "running"]
        victim = running[0]["task_id"] if running else None
        time.sleep(0.5)
    stack.kill("airflow-worker")
    time.sleep(3)
    stack.start("airflow-worker")

    assert stack.wait_for_run("wine_quality", run_id, 600)["state"] == "success", stack.logs()
    killed = next(ti for ti in stack.task_instances("wine_quality", run_id) if ti["task_id"] == victim)
    assert killed["try_number"] >= 2, f"{victim} was not retried: {killed}"
    assert killed["state"] == "success"
    # Every MLflow run of the DAG run ended: the killed attempt's run (if it had one) is FAILED.
    client = MlflowClient(f"http://127.0.0.1:{stack.ports['mlflow']}")
    experiment = client.get_experiment_by_name("wine-quality")
    runs = client.search_runs([experiment.experiment_id], filter_string=f"tags.airflow_dag_run_id = '{run_id}'")
    assert runs
    assert {r.info.status for r in runs} <= {"FINISHED", "FAILED"}
