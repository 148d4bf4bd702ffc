"""A Celery worker on another host, as README's "Adding a worker host" has users start one.

A second compose project from docker-compose.worker.yml stands in for the other host: it runs in a
network of its own, mounts nothing, shares no volume, and reaches the first project only through the
ports that docker-compose.primary.yml publishes on WORKERS_BIND_HOST (here Docker's bridge address,
which nothing outside this machine reaches). Its .env is what `make worker-env` writes. The first
project routes compute tasks to the queue ``compute`` (FSDL_COMPUTE_QUEUE, conftest.py); for these
tests its own worker stops taking that queue and the worker host takes only that queue, so the compute
tasks run on the worker host and the rest on the first host.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from fsdl_lib import storage
from fsdl_tools.clients import wait_until
from fsdl_tools.compose import ComposeProject, docker

from .conftest import COMPUTE_QUEUE
from .test_compose_live import TIMINGS, clients, killed_mid_task_and_retried, tag, wait_success

pytestmark = pytest.mark.slow

HOSTNAME = "fsdltest-worker-2"
CELERY_APP = "airflow.providers.celery.executors.celery_executor.app"


def celery_control(project: ComposeProject, *args: str) -> str:
    """``celery control ARGS`` in the first host's worker, addressed to that worker only."""
    node = f"celery@{project.hostname('airflow-worker')}"
    command = ["exec", project.container("airflow-worker"), "celery", "--app", CELERY_APP, "control", *args]
    return docker(*command, "-d", node, timeout=120).stdout


@pytest.fixture(scope="module")
def worker_host(project, tmp_path_factory) -> Iterator[ComposeProject]:
    # Up already when the whole layer runs (test_compose_live.py first); this module alone starts it.
    if not project.ps():
        project.compose("up", "--detach", "--build", "--wait", "--wait-timeout", "600", timeout=2400)
    host = project.worker_host(tmp_path_factory.mktemp("worker-host") / "fsdl", project.env["WORKERS_BIND_HOST"],
                               HOSTNAME)  # fmt: skip
    # A compute host, as README suggests: it takes only the compute queue, so everything else stays on the first.
    env = host.dir / ".env"
    lines = [line for line in env.read_text().splitlines() if not line.startswith("FSDL_WORKER_QUEUES=")]
    env.write_text("\n".join([*lines, f"FSDL_WORKER_QUEUES={COMPUTE_QUEUE}"]) + "\n")
    start = time.monotonic()
    try:
        host.compose("up", "--detach", "--no-build", "--wait", "--wait-timeout", "300", timeout=400)
        TIMINGS["worker host up until healthy"] = time.monotonic() - start
        assert f"no longer consuming from {COMPUTE_QUEUE}" in celery_control(project, "cancel_consumer", COMPUTE_QUEUE)
        yield host
    finally:
        celery_control(project, "add_consumer", COMPUTE_QUEUE)
        print(f"\nworker host's compose log: {host.log}")
        host.destroy()


def test_the_worker_host_mounts_nothing_and_reaches_only_the_published_ports(project, worker_host):
    container = worker_host.container("airflow-worker")
    inspected = json.loads(docker("inspect", container).stdout)[0]
    assert inspected["Mounts"] == []
    assert set(inspected["NetworkSettings"]["Networks"]) == {f"{worker_host.name}_default"}
    # It started because its image holds the first host's DAGs and fsdl_lib.
    assert "this worker's DAGs and fsdl_lib are the first host's" in worker_host.logs(["airflow-worker"], tail=400)

    def reaches(host: str, port: int | str) -> bool:
        probe = f"import socket; socket.create_connection(({host!r}, {int(port)}), 3)"
        return docker("exec", container, "python", "-c", probe, check=False).returncode == 0

    env, first = project.env, project.env["WORKERS_BIND_HOST"]
    for name in ("REDIS_PORT", "POSTGRES_PORT", "AIRFLOW_PORT", "MLFLOW_PORT", "OBJECTSTORE_PORT"):
        assert reaches(first, env[name]), f"the worker host does not reach {name} at {first}"
    # Published on loopback only (Flower, the web app), or not at all (the store's own servers): out of reach,
    # and so is every container of the first host by its own address.
    assert not reaches(first, env["FLOWER_PORT"])
    assert not reaches(first, env["WEBAPP_PORT"])
    redis_ip = next(iter(json.loads(docker("inspect", project.container("redis")).stdout)[0]["NetworkSettings"]
                         ["Networks"].values()))["IPAddress"]  # fmt: skip
    assert not reaches(redis_ip, 6379)

    # Redis and Postgres answer only with their passwords, and the worker host's Postgres role reaches
    # Celery's results and nothing else.
    def refused(probe: str) -> str:
        result = docker("exec", container, "python", "-c", probe, check=False)
        assert result.returncode != 0, f"accepted: {probe}"
        return result.stderr

    redis = f"import redis; redis.Redis(host='redis', port={env['REDIS_PORT']}).ping()"
    assert "authenticat" in refused(redis).lower()  # NOAUTH: HELLO or PING before AUTH, as the client speaks
    connect = "import psycopg2; psycopg2.connect(host='postgres', port={}, user={!r}, password={!r}, dbname={!r})"
    port, password = env["POSTGRES_PORT"], env["CELERY_RESULTS_PASSWORD"]
    assert "password authentication failed" in refused(connect.format(port, "celery", "wrong", "celery_results"))
    assert "permission denied for database" in refused(connect.format(port, "celery", password, "airflow"))
    assert "password authentication failed" in refused(connect.format(port, "airflow", password, "airflow"))
    # The first host's secrets that a worker host does not need are not in its environment.
    environment = "\n".join(inspected["Config"]["Env"])
    for secret in ("POSTGRES_PASSWORD", "AIRFLOW__CORE__FERNET_KEY", "AIRFLOW__API_AUTH__JWT_SECRET",
                   "OBJECTSTORE_ADMIN_SECRET_KEY", "AIRFLOW_ADMIN_PASSWORD"):  # fmt: skip
        assert env[secret] not in environment, secret


def test_a_training_runs_on_both_hosts_and_its_model_is_served(project, worker_host):
    airflow, mlflow, webapp = clients(project)
    start = time.monotonic()
    run_id = airflow.trigger("intel_scenes_sequential")
    wait_success(project, airflow, "intel_scenes_sequential", run_id, 900)
    TIMINGS["training on two hosts (sequential)"] = time.monotonic() - start
    instances = airflow.task_instances("intel_scenes_sequential", run_id)
    hosts = {ti["task_id"]: ti["hostname"] for ti in instances if ti["state"] == "success"}
    first = project.hostname("airflow-worker")
    assert set(hosts.values()) == {first, HOSTNAME}, hosts
    assert hosts["train_candidates"] == HOSTNAME, hosts  # compute tasks
    assert hosts["create_dataset"] == HOSTNAME, hosts
    assert hosts["register_best"] == first, hosts

    version = mlflow.alias("challenger")
    assert tag(version, "airflow_dag_run_id") == run_id
    mlflow.set_alias("production", version["version"])
    webapp.wait_for_version(version["version"], timeout=120)

    # The worker host's task log went to the store; Airflow's API serves it from there.
    logs = project.store_location("s3://fsdl-logs/airflow")
    ours = (f"run_id={run_id}/", "task_id=train_candidates/")
    names = [name for name in storage.files(logs) if all(part in name for part in ours)]
    assert names, f"no log of train_candidates in {storage.describe(logs)}"
    kept = [json.loads(line) for line in storage.read_bytes(logs / names[0]).decode().splitlines() if line.strip()]
    written = {entry.get("event") for entry in kept} - {None}
    served = {entry.get("event") for entry in airflow.task_log("intel_scenes_sequential", run_id, "train_candidates")
              if isinstance(entry, dict)}  # fmt: skip
    assert written, kept[:5]
    assert written <= served, sorted(written - served)[:5]


def test_a_killed_worker_host_task_is_retried_and_the_run_succeeds(project, worker_host):
    airflow, _, _ = clients(project)
    # train_and_evaluate is a compute task: it runs on the worker host, is retried there.
    killed = killed_mid_task_and_retried(airflow, worker_host, "wine_quality", "train_and_evaluate")
    assert killed["hostname"] == HOSTNAME, killed
    wait_until(lambda: worker_host.state("airflow-worker") == "running", 60, "the worker host running again")
