"""`docker compose up` as users run it: build every image, start every service, turn the flywheel
through the containers, kill and restart containers, then `down` and `up` again on the same data.

The tests run in file order and share one compose project (tests/compose_live/conftest.py); each
talks to the platform only through its public interfaces: Airflow's and MLflow's REST APIs, the web
app's JSON API, the files on the host and the docker CLI.
"""

from __future__ import annotations

import json
import random
import secrets
import time
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from fsdl_lib import storage
from fsdl_lib.classes import SCENE_CLASSES
from fsdl_lib.exceptions import StorageError
from fsdl_tools import probes
from fsdl_tools.clients import AirflowClient, WebappClient, wait_until
from fsdl_tools.compose import ROOT, TEST_PROJECT_PREFIX, ComposeProject, docker
from fsdl_tools.faults import kill_worker_mid_task
from fsdl_tools.flywheel import fresh_photo

pytestmark = pytest.mark.slow

SERVICES = set(yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"])
ONE_SHOT = {"airflow-init"}
MODEL = "intel-scenes"
TIMINGS: dict[str, float] = {}
MEMORY: dict[str, dict[str, float]] = {}


class Mlflow:
    """MLflow's REST API, as a script or the MLflow UI uses it, logged in as ``auth``."""

    def __init__(self, base_url: str, auth: tuple[str, str]) -> None:
        self.api = f"{base_url}/api/2.0/mlflow"
        self.auth = auth

    def get(self, path: str, **params: Any) -> dict[str, Any]:
        response = requests.get(f"{self.api}/{path}", params=params, auth=self.auth, timeout=30)
        response.raise_for_status()
        return dict(response.json())

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = requests.post(f"{self.api}/{path}", json=body, auth=self.auth, timeout=30)
        response.raise_for_status()
        return dict(response.json())

    def alias(self, alias: str) -> dict[str, Any]:
        return dict(self.get("registered-models/alias", name=MODEL, alias=alias)["model_version"])

    def set_alias(self, alias: str, version: str) -> None:
        self.post("registered-models/alias", {"name": MODEL, "alias": alias, "version": version})

    def versions(self) -> dict[str, str]:
        """Every version of the model with its run id."""
        found = self.get("model-versions/search", filter=f"name='{MODEL}'", max_results=1000)
        return {v["version"]: v["run_id"] for v in found.get("model_versions", [])}

    def runs(self) -> dict[str, str]:
        """Every run of every experiment, with its status."""
        experiments = self.post("experiments/search", {"max_results": 1000}).get("experiments", [])
        ids = [e["experiment_id"] for e in experiments]
        runs = self.post("runs/search", {"experiment_ids": ids, "max_results": 1000}).get("runs", [])
        return {r["info"]["run_id"]: r["info"]["status"] for r in runs}


def tag(version: dict[str, Any], key: str) -> str | None:
    return next((t["value"] for t in version.get("tags", []) if t["key"] == key), None)


def clients(project: ComposeProject) -> tuple[AirflowClient, Mlflow, WebappClient]:
    """The platform's users: an Airflow admin and an MLflow admin (the logins `make secrets` made)."""
    env = project.env
    airflow = AirflowClient(project.url("AIRFLOW_PORT"), "admin", env["AIRFLOW_ADMIN_PASSWORD"])
    airflow.login()
    mlflow = Mlflow(project.url("MLFLOW_PORT"), ("admin", env["MLFLOW_AUTH_ADMIN_PASSWORD"]))
    reviewer = ("reviewer", env["WEBAPP_REVIEWER_PASSWORD"])
    return airflow, mlflow, WebappClient(project.url("WEBAPP_PORT"), reviewer=reviewer)


def wait_success(project: ComposeProject, airflow: AirflowClient, dag_id: str, run_id: str, timeout: float) -> dict:
    try:
        run = airflow.wait_for_run(dag_id, run_id, timeout)
    except TimeoutError as exc:
        raise AssertionError(f"{exc}\n{project.logs(['airflow-scheduler', 'airflow-worker'])}") from None
    states = {t["task_id"]: t["state"] for t in airflow.task_instances(dag_id, run_id)}
    assert run["state"] == "success", f"{dag_id} {run_id}: {states}\n{project.logs(['airflow-worker'])}"
    return run


def all_healthy(project: ComposeProject) -> dict[str, dict[str, Any]]:
    ps = project.ps()
    assert set(ps) == SERVICES, f"containers: {sorted(ps)}"
    for service in SERVICES - ONE_SHOT:
        assert ps[service]["State"] == "running", f"{service}: {ps[service]['Status']}"
        assert ps[service]["Health"] == "healthy", f"{service}: {ps[service]['Status']}"
    assert ps["airflow-init"]["State"] == "exited"
    assert project.exit_code("airflow-init") == 0, project.logs(["airflow-init"])
    return ps


def stored(project: ComposeProject, url: str) -> dict[str, storage.StoredFile]:
    """The objects under ``url`` (s3://bucket/prefix) in the project's store, read as its admin."""
    return storage.files(project.store_location(url))


def snapshot(project: ComposeProject, mlflow: Mlflow, webapp: WebappClient) -> dict[str, Any]:
    """What must survive restarts: registry, runs, the feedback log, the data in the store."""
    stats = requests.get(f"{webapp.base_url}/api/v1/stats", timeout=30).json()
    scenes = stored(project, "s3://fsdl-data/raw/intel_scenes")
    return {
        "versions": mlflow.versions(),
        "production": mlflow.alias("production")["version"],
        "runs": mlflow.runs(),
        "feedback_log": stats["versions"],
        "train": sorted(name for name in scenes if name.startswith("train/")),
        "test": sorted(name for name in scenes if name.startswith("test/")),
        "feedback_db": (project.dir / "storage" / "webapp" / "feedback.db").stat().st_size > 0,
    }


def test_what_killed_test_runs_left_is_removed_and_nothing_else():
    """Runs first, before this layer's project exists: what a killed run left (containers that
    `restart: always` brings back with the engine, volumes) goes; other projects stay."""
    stale = f"{TEST_PROJECT_PREFIX}{secrets.token_hex(3)}"
    other = f"keep{secrets.token_hex(3)}"
    image = "python:3.11-slim-bookworm"  # a base image of the project's Dockerfiles: present wherever they build
    docker("run", "--detach", "--restart", "always", "--name", f"{stale}-webapp-1", image, "sleep", "600")
    docker("volume", "create", f"{stale}_postgres-db-volume")
    docker("volume", "create", f"{other}_data")
    try:
        assert stale in ComposeProject.remove_stale_test_projects()
        assert f"{stale}-webapp-1" not in docker("ps", "--all", "--format", "{{.Names}}").stdout.split()
        volumes = docker("volume", "ls", "--quiet").stdout.split()
        assert f"{stale}_postgres-db-volume" not in volumes
        assert f"{other}_data" in volumes
    finally:
        docker("rm", "--force", f"{stale}-webapp-1", check=False)
        docker("volume", "rm", f"{other}_data", f"{stale}_postgres-db-volume", check=False)


@pytest.mark.timeout(3600)  # a first build on a new machine downloads torch into two images
def test_images_build_and_every_service_becomes_healthy(project):
    TIMINGS["build"] = project.timed("build", timeout=3600)
    TIMINGS["up until healthy"] = project.timed("up", "--detach", "--wait", "--wait-timeout", "900", timeout=1000)
    all_healthy(project)

    # airflow-init created the buckets and seeded the sample photos and the wine data into the store;
    # the host's data/ folder holds none of it.
    data = stored(project, "s3://fsdl-data")
    assert len([name for name in data if name.startswith("raw/intel_scenes/train/")]) == 90
    assert len([name for name in data if name.startswith("raw/intel_scenes/test/")]) == 30
    assert "raw/wine/winequality-red.csv" in data
    assert not list((project.dir / "data" / "raw" / "intel_scenes").rglob("*.jpg"))
    MEMORY["at rest"] = project.memory()

    # No usage telemetry from any image that runs MLflow's client or server.
    probe = "from mlflow.telemetry.utils import is_telemetry_disabled; print(is_telemetry_disabled())"
    for service in ("airflow-worker", "airflow-scheduler", "mlflow", "webapp"):
        out = project.compose("exec", "-T", service, "python", "-c", probe).stdout.strip()
        assert out.endswith("True"), f"{service}: telemetry is not disabled ({out})"

    # The web app's image has no torch: it serves the exported backbone graph on ONNX Runtime.
    size = int(docker("image", "inspect", "--format", "{{.Size}}", "fsdl-webapp:0.1.0").stdout.strip())
    assert size <= 2**30, f"the web-app image is {size / 2**30:.2f} GiB (at most 1 GiB)"
    absent = "import importlib.util as u; print([m for m in ('torch', 'torchvision') if u.find_spec(m)])"
    assert project.compose("exec", "-T", "webapp", "python", "-c", absent).stdout.strip() == "[]"


def test_every_control_surface_asks_for_its_generated_login(project):
    env = project.env
    assert (project.dir / ".env").stat().st_mode & 0o777 == 0o600
    mlflow = project.url("MLFLOW_PORT")
    search = f"{mlflow}/api/2.0/mlflow/registered-models/search"
    assert requests.get(search, timeout=30).status_code == 401
    assert requests.get(search, auth=("admin", "password1234"), timeout=30).status_code == 401
    assert requests.get(search, auth=("admin", env["MLFLOW_AUTH_ADMIN_PASSWORD"]), timeout=30).ok
    # The web app's account reads but cannot move an alias; the pipelines' account has its own login.
    reader = ("fsdl-webapp", env["WEBAPP_MLFLOW_PASSWORD"])
    assert requests.get(search, auth=reader, timeout=30).ok
    prometheus = f"{project.url('PROMETHEUS_PORT')}/api/v1/query"
    assert requests.get(prometheus, params={"query": "up"}, timeout=30).status_code == 401
    assert requests.get(prometheus, params={"query": "up"}, auth=("admin", "admin"), timeout=30).status_code == 401
    assert requests.get(prometheus, params={"query": "up"}, auth=("admin", env["PROMETHEUS_PASSWORD"]), timeout=30).ok
    flower = project.url("FLOWER_PORT")
    assert requests.get(f"{flower}/api/workers", timeout=30).status_code == 401
    assert requests.get(f"{flower}/", timeout=30).status_code == 401
    assert requests.get(f"{flower}/api/workers", auth=("admin", env["FLOWER_PASSWORD"]), timeout=30).ok
    airflow = project.url("AIRFLOW_PORT")
    default = requests.post(f"{airflow}/auth/token", json={"username": "admin", "password": "admin"}, timeout=30)
    assert default.status_code in (401, 403)
    clients(project)  # the generated Airflow login works

    # Compose refuses to start without any one of the secrets, rather than falling back to a default.
    text = (project.dir / ".env").read_text()
    for name in ("POSTGRES_PASSWORD", "REDIS_PASSWORD", "AIRFLOW_ADMIN_PASSWORD", "MLFLOW_AUTH_ADMIN_PASSWORD",
                 "FLOWER_PASSWORD", "PROMETHEUS_PASSWORD", "OBJECTSTORE_WEBAPP_SECRET_KEY",
                 "OBJECTSTORE_GATEWAY_TLS"):  # fmt: skip
        without = "\n".join(line for line in text.splitlines() if not line.startswith(f"{name}="))
        (project.dir / "without.env").write_text(without + "\n")
        refused = project.compose("--env-file", "without.env", "config", "--quiet", check=False)
        assert refused.returncode != 0, f"compose starts without {name}"
        assert name in refused.stderr


CONTROL_PLANE = {
    "redis": 6379, "postgres": 5432, "airflow-apiserver": 8080, "airflow-scheduler": 8974, "airflow-worker": 8793,
    "airflow-dag-processor": 8793, "flower": 5555, "statsd-exporter": 9102,
}  # fmt: skip
STORE_SERVERS = (9333, 19333, 8080, 18080, 8888, 18888)
"""The object store's master, volume and filer ports (HTTP and gRPC): none asks for credentials."""
PROBES = Path(probes.__file__).read_text()
"""Run inside a container: ``python -c PROBES reach HOST:PORT...`` (fsdl_tools.probes)."""


def test_the_web_app_is_cut_off_from_the_control_plane(project):
    """Before: the web app mounted all of ./data read-write and shared one network with Redis (no
    password), Postgres and the Airflow API. Checked from inside the web-app container."""
    import json

    def address(service: str, network: str) -> str:
        networks = docker("inspect", "-f", "{{json .NetworkSettings.Networks}}", project.container(service)).stdout
        (ip,) = [n["IPAddress"] for name, n in json.loads(networks).items() if name.endswith(f"_{network}")]
        return str(ip)

    # Nothing of the control plane or of the store's servers answers, by name or by its address.
    targets = [f"{s}:{p}" for s, p in CONTROL_PLANE.items()]
    targets += [f"{address(s, 'control')}:{p}" for s, p in CONTROL_PLANE.items()]
    targets += [f"objectstore:{p}" for p in STORE_SERVERS]
    targets += [f"{address('objectstore', 'store')}:{p}" for p in STORE_SERVERS]
    needed = ["mlflow:5000", "objectstore-gateway:8333"]  # the model registry, and the store's S3 API
    probe = project.compose("exec", "-T", "webapp", "python", "-c", PROBES, "reach", *targets, *needed).stdout
    reach = json.loads(probe.strip().splitlines()[-1])
    assert [reach.pop(target) for target in needed] == ["open", "open"]
    assert {t: r for t, r in reach.items() if r == "open"} == {}, reach

    # The gateway's gRPC port (S3 port + 10000), which could change its identities, takes no client:
    # no answer in clear, and TLS without the certificate nobody has is refused.
    grpc = project.compose("exec", "-T", "webapp", "python", "-c", PROBES, "grpc", "objectstore-gateway", "18333")
    answers = json.loads(grpc.stdout.strip().splitlines()[-1])
    assert probes.takes_clients(answers) == [], answers
    assert "CERTIFICATE_REQUIRED" in answers["tls"], answers
    # With the web app's identity, the store gives nothing of the training data.
    with pytest.raises(StorageError, match="refused this service's credentials"):
        storage.files(project.store_location("s3://fsdl-data", "webapp"))
    # Prometheus, on both networks, still scrapes it (test_prometheus_scrapes_the_web_app_... below).

    # It mounts its state folder only: no data, no Airflow or MLflow state.
    listing = project.compose("exec", "-T", "webapp", "ls", "-A", "/opt/fsdl/storage").stdout
    assert listing.split() == ["webapp"], listing
    mounts = json.loads(docker("inspect", "-f", "{{json .Mounts}}", project.container("webapp")).stdout)
    assert sorted(m["Destination"] for m in mounts) == ["/opt/fsdl/storage/webapp"]

    # Redis asks for its password; the workers have it.
    assert "NOAUTH" in project.compose("exec", "-T", "redis", "redis-cli", "ping").stdout
    assert (
        "PONG"
        in project.compose(
            "exec", "-T", "-e", f"REDISCLI_AUTH={project.env['REDIS_PASSWORD']}", "redis", "redis-cli", "ping"
        ).stdout
    )

    # Every container's log has a size limit.
    for service, row in project.ps().items():
        config = json.loads(docker("inspect", "-f", "{{json .HostConfig.LogConfig}}", row["ID"]).stdout)
        assert config == {"Type": "json-file", "Config": {"max-file": "3", "max-size": "10m"}}, (service, config)


def test_flywheel_turns_through_the_containers(project):
    airflow, mlflow, webapp = clients(project)
    airflow.wait_for_dags({"intel_scenes_sequential", "intel_scenes_parallel", "feedback_sync"}, 180)

    # Training runs on the Celery worker container.
    start = time.monotonic()
    first_run = airflow.trigger("intel_scenes_sequential")
    wait_success(project, airflow, "intel_scenes_sequential", first_run, 1200)
    TIMINGS["first training (sequential)"] = time.monotonic() - start
    worker = project.hostname("airflow-worker")
    instances = airflow.task_instances("intel_scenes_sequential", first_run)
    assert instances
    for ti in instances:
        assert ti["hostname"] == worker, f"{ti['task_id']} ran on {ti['hostname']}, not the worker ({worker})"
        assert "Celery" in str(ti["executor"]) or ti["executor"] is None, ti

    # The DAGs registered it with their own account; the web app's read-only account cannot promote.
    first = mlflow.alias("challenger")
    assert tag(first, "airflow_dag_run_id") == first_run
    reader = Mlflow(project.url("MLFLOW_PORT"), ("fsdl-webapp", project.env["WEBAPP_MLFLOW_PASSWORD"]))
    with pytest.raises(requests.HTTPError) as refused:
        reader.set_alias("production", first["version"])
    assert refused.value.response.status_code == 403

    # A person promotes the challenger (here through MLflow's REST API, as its UI does).
    mlflow.set_alias("production", first["version"])
    webapp.wait_for_version(first["version"], timeout=120)

    # A user uploads photos; one the model gets wrong is corrected through the web app's API.
    photos = sorted((ROOT / "samples" / "intel_scenes").glob("*/*.jpg"))
    random.Random(5).shuffle(photos)
    feedback_start = time.monotonic()
    correction = None
    for photo in photos:
        prediction = webapp.predict(fresh_photo(photo), f"{photo.stem}-mirrored.jpg")
        assert prediction["label"] in SCENE_CLASSES
        assert prediction["model"]["version"] == first["version"]
        assert prediction["kept"] is True  # the upload is in the store
        if prediction["label"] != photo.parent.name:
            correction = webapp.feedback(prediction["prediction_id"], False, photo.parent.name)
            break
    assert correction is not None, "the model classified every sample photo correctly: no correction to send"
    assert correction["review_state"] == "pending"
    answers = "s3://fsdl-uploads/feedback/intel_scenes"
    unreviewed = [name for name in stored(project, answers) if name.endswith(".jpg")]
    assert not unreviewed, "an answer reached training unreviewed"

    # The reviewer accepts it through the review API; only then is it an object for training.
    (decision,) = webapp.review([{"prediction_id": correction["prediction_id"], "action": "accept"}])
    assert decision["path"] in stored(project, answers)

    # The sync merges it and updates the asset, which starts the parallel training by itself.
    known = {r["dag_run_id"] for r in airflow.runs("intel_scenes_parallel")}
    sync = airflow.trigger("feedback_sync")
    wait_success(project, airflow, "feedback_sync", sync, 300)
    states = {t["task_id"]: t["state"] for t in airflow.task_instances("feedback_sync", sync)}
    assert states == {"merge_feedback": "success", "publish": "success"}
    assert decision["path"] not in stored(project, answers), "the sync left the answer in place"
    assert f"train/{decision['path']}" in stored(project, "s3://fsdl-data/raw/intel_scenes")

    # Its task log is on the store (uploaded once the task ended: it may land after the run's success),
    # and Airflow's API serves it from there.
    def merge_log() -> list[str]:
        logs = stored(project, "s3://fsdl-logs/airflow")
        return [name for name in logs if f"run_id={sync}/" in name and "task_id=merge_feedback/" in name]

    wait_until(merge_log, 60, "merge_feedback's log on the store", interval=1)
    assert "merge_feedback" in json.dumps(airflow.task_log("feedback_sync", sync, "merge_feedback"))

    run = airflow.wait_for_new_run("intel_scenes_parallel", known, 180)
    assert run["run_type"] == "asset_triggered", run
    peak: dict[str, float] = {}

    def trained() -> bool:
        for service, mib in project.memory().items():
            peak[service] = max(peak.get(service, 0.0), mib)
        return airflow.run("intel_scenes_parallel", run["dag_run_id"])["state"] in ("success", "failed")

    wait_until(trained, 1200, "the asset-triggered training", interval=3)
    MEMORY["training (peak)"] = peak
    wait_success(project, airflow, "intel_scenes_parallel", run["dag_run_id"], 60)
    assert {ti["hostname"] for ti in airflow.task_instances("intel_scenes_parallel", run["dag_run_id"])} == {worker}

    second = mlflow.alias("challenger")
    assert int(second["version"]) > int(first["version"])
    assert tag(second, "airflow_dag_run_id") == run["dag_run_id"]
    assert tag(second, "dataset_version") != tag(first, "dataset_version")
    assert (tag(second, "training_path"), tag(second, "candidate")) == ("refit", tag(first, "candidate"))
    mlflow.set_alias("production", second["version"])
    webapp.wait_for_version(second["version"], timeout=120)
    TIMINGS["feedback to new version served"] = time.monotonic() - feedback_start


def prometheus_query(project: ComposeProject, promql: str, timeout: float = 120) -> list[dict[str, Any]]:
    """The series Prometheus answers for ``promql``, waiting until it has some (scrapes are 15 s apart)."""
    login = ("admin", project.env["PROMETHEUS_PASSWORD"])

    def answered() -> list[dict[str, Any]]:
        response = requests.get(
            f"{project.url('PROMETHEUS_PORT')}/api/v1/query", params={"query": promql}, auth=login, timeout=30
        )
        response.raise_for_status()
        return list(response.json()["data"]["result"])

    return wait_until(
        answered, timeout, f"Prometheus answering {promql}", interval=3,
        describe=lambda: project.logs(["prometheus"]),
    )  # fmt: skip


def killed_mid_task_and_retried(airflow: AirflowClient, target: ComposeProject, dag_id: str, task_id: str) -> dict:
    """Kill ``target``'s Celery worker container while ``task_id`` runs on it, start it again, and check
    that the task was retried and the run succeeded; returns the killed task's instance."""

    def restart() -> None:  # a killed container stays down, whatever its restart policy; start is a no-op if up
        target.compose("start", "airflow-worker", timeout=300)
        target.wait_healthy()

    worker = target.container("airflow-worker")
    try:
        run, killed = kill_worker_mid_task(airflow, dag_id, task_id, kill=lambda: docker("kill", worker),
                                           restart=restart)  # fmt: skip
    except TimeoutError as exc:
        raise AssertionError(f"{exc}\n{target.logs(['airflow-scheduler', 'airflow-worker'])}") from None
    assert run["state"] == "success", target.logs(["airflow-worker"])
    assert killed["try_number"] >= 2, f"{task_id} was not retried: {killed}"
    return killed


def test_killed_worker_task_is_retried_and_the_run_succeeds(project):
    airflow, _, _ = clients(project)
    # train_and_evaluate: imports, autologging, scoring and the model upload: several seconds
    killed = killed_mid_task_and_retried(airflow, project, "wine_quality", "train_and_evaluate")
    assert killed["hostname"] == project.hostname("airflow-worker")


def test_restarted_webapp_and_mlflow_lose_nothing(project):
    _, mlflow, webapp = clients(project)
    before = snapshot(project, mlflow, webapp)
    assert sum(v["feedback"] for v in before["feedback_log"]) >= 1
    project.compose("restart", "webapp", "mlflow", timeout=300)
    project.wait_healthy()
    webapp.wait_for_version(before["production"], timeout=120)
    assert snapshot(project, mlflow, webapp) == before


def test_down_keeps_the_data_and_a_second_up_reuses_it(project):
    _, mlflow, webapp = clients(project)
    before = snapshot(project, mlflow, webapp)
    project.compose("down", "--timeout", "30", timeout=300)
    assert not project.ps(), "containers are left after down"
    assert (project.dir / "storage" / "mlflow" / "mlflow.db").is_file()
    assert (project.dir / "storage" / "webapp" / "feedback.db").is_file()

    TIMINGS["second up until healthy"] = project.timed("up", "--detach", "--wait", "--wait-timeout", "600", timeout=700)
    all_healthy(project)
    init_log = project.logs(["airflow-init"], tail=200)
    assert "not seeding" in init_log, init_log
    airflow, mlflow, webapp = clients(project)
    webapp.wait_for_version(before["production"], timeout=120)
    assert snapshot(project, mlflow, webapp) == before
    assert len(airflow.runs("intel_scenes_sequential")) == 1  # Airflow's history is in the Postgres volume


def test_report(project, capsys):
    """Print what this run measured (benchmarks/README.md quotes such numbers)."""
    sizes = {
        image: int(docker("image", "inspect", "-f", "{{.Size}}", image).stdout) / 2**30
        for image in ("fsdl-airflow:3.3.2", "fsdl-webapp:0.1.0", "fsdl-mlflow:3.17.2", "fsdl-statsd-exporter:0.1.0")
    }
    assert TIMINGS
    assert MEMORY
    with capsys.disabled():
        print("\nthe platform under docker compose:")
        for step, seconds in TIMINGS.items():
            print(f"  {step:40s} {seconds:7.1f} s")
        for image, gib in sizes.items():
            print(f"  image {image:34s} {gib:7.2f} GiB")
        for phase, usage in MEMORY.items():
            print(f"  memory {phase}: " + ", ".join(f"{s} {m:.0f} MiB" for s, m in sorted(usage.items())))
