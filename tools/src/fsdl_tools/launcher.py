"""The platform as local processes in a workspace of its own, the one launcher of the demo, the
benchmarks and the tests: a clean environment (none of the caller's platform variables), free
ports, ``scripts/up.sh`` (``make up`` or ``make up-distributed``), healthy before it returns, the
logins it generated, and a stop that leaves no process behind.
"""

from __future__ import annotations

import os
import secrets
import shlex
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fsdl_tools.clients import AirflowClient, WebappClient, free_port, free_port_range, local_logins, wait_for_http
from fsdl_tools.processes import GRACE_SECONDS, end
from fsdl_tools.repo import ROOT

PORTS = (
    "AIRFLOW_PORT", "MLFLOW_PORT", "WEBAPP_PORT", "FLOWER_PORT", "PROMETHEUS_PORT", "STATSD_EXPORTER_PORT",
    "FSDL_STATSD_PORT",
)  # fmt: skip
CALLER_VARIABLES = ("FSDL_", "AIRFLOW", "MLFLOW_", "WEBAPP_", "FLOWER_", "PROMETHEUS_", "STATSD_", "TORCH_HOME")
"""Prefixes of the caller's variables that would change the platform under test: dropped."""


def procfile(path: Path) -> dict[str, str]:
    """The ``role: command`` entries of a Procfile."""
    entries = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, command = line.split(":", 1)
            entries[name.strip()] = command.strip()
    return entries


def stop_process_group(proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    """SIGTERM the process group of ``proc`` and wait until every member is gone (then SIGKILL)."""
    deadline = time.monotonic() + timeout
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        while time.monotonic() < deadline or sig == signal.SIGKILL:
            proc.poll()
            try:
                os.killpg(proc.pid, 0)
            except ProcessLookupError:
                proc.wait()
                return
            time.sleep(0.2)
    proc.wait()


class LocalPlatform:
    """``mode`` is ``embedded`` (SQLite, LocalExecutor) or ``distributed`` (a database of its own on
    the Postgres at 127.0.0.1, Redis, Celery, Flower); ``settings`` are added to the environment."""

    def __init__(self, workspace: Path, *, mode: str = "embedded", settings: Mapping[str, str] | None = None) -> None:
        self.workspace = Path(workspace)
        self.mode = mode
        self.ports = {name: free_port() for name in PORTS}
        if mode == "distributed":  # the object store's S3 API, and its internal servers on the next seven
            self.ports["OBJECTSTORE_PORT"] = free_port_range(8)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(CALLER_VARIABLES)}
        self.env.update(self.ports_env())
        self.env.update(
            FSDL_MODE=mode,
            FSDL_DATA_DIR=str(self.workspace / "data"),
            FSDL_STORAGE_DIR=str(self.workspace / "storage"),
            AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT=str(free_port()),
        )
        self.database: str | None = None
        if mode == "distributed":
            self.database = f"fsdl_{secrets.token_hex(4)}"
            self.env.update(
                FSDL_POSTGRES_URL=f"postgresql+psycopg2://postgres@127.0.0.1:5432/{self.database}",
                FSDL_REDIS_URL=f"redis://127.0.0.1:6379/{7 + secrets.randbelow(8)}",
            )
        self.env.update(settings or {})
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.workspace.mkdir(parents=True, exist_ok=True)

    def ports_env(self) -> dict[str, str]:
        return {name: str(port) for name, port in self.ports.items()}

    # --- where things are ---------------------------------------------------------------------
    def url(self, port: str) -> str:
        return f"http://127.0.0.1:{self.ports[port]}"

    @property
    def airflow(self) -> str:
        return self.url("AIRFLOW_PORT")

    @property
    def mlflow(self) -> str:
        return self.url("MLFLOW_PORT")

    @property
    def webapp(self) -> str:
        return self.url("WEBAPP_PORT")

    @property
    def flower(self) -> str:
        return self.url("FLOWER_PORT")

    @property
    def prometheus(self) -> str:
        return self.url("PROMETHEUS_PORT")

    @property
    def prometheus_auth(self) -> tuple[str, str]:
        return "admin", self.logins["PROMETHEUS_PASSWORD"]

    @property
    def log(self) -> Path:
        return self.workspace / "platform.log"

    @property
    def logins(self) -> dict[str, str]:
        """The logins generated on the first start (passwords by variable name)."""
        return local_logins(self.workspace / "storage")

    # --- starting and stopping ----------------------------------------------------------------
    def prepare(self) -> None:
        """Seed, check the services, migrate, write the logins; start nothing (``up.sh --prepare-only``)."""
        done = subprocess.run(
            [str(ROOT / "scripts" / "up.sh"), "--prepare-only"], env=self.env, timeout=300, capture_output=True,
            text=True,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(
                f"up.sh --prepare-only exited with {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
            )

    def start(self) -> subprocess.Popen[bytes]:
        """Every process at once, as ``make up`` runs them (honcho, one log)."""
        with self.log.open("ab") as log:
            self.procs["platform"] = subprocess.Popen(
                [str(ROOT / "scripts" / "up.sh")], env=self.env, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        return self.procs["platform"]

    def start_role(self, role: str) -> subprocess.Popen[bytes]:
        """One process of the mode's Procfile on its own (after :meth:`prepare`), so it can be killed."""
        name = "Procfile.distributed" if self.mode == "distributed" else "Procfile"
        command = procfile(ROOT / name)[role]
        script = f". {shlex.quote(str(ROOT / 'scripts' / 'local-env.sh'))} && exec {command}"
        with (self.workspace / f"{role}.log").open("ab") as log:
            self.procs[role] = subprocess.Popen(
                ["bash", "-c", script], env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        return self.procs[role]

    def start_roles(self) -> None:
        """Every role of the mode's Procfile, Prometheus only where it is installed (as ``up.sh`` does)."""
        name = "Procfile.distributed" if self.mode == "distributed" else "Procfile"
        for role in procfile(ROOT / name):
            if role != "prometheus" or shutil.which("prometheus"):
                self.start_role(role)

    def kill_role(self, role: str) -> None:
        """SIGKILL a role's process group, as a crash would."""
        os.killpg(self.procs[role].pid, signal.SIGKILL)
        self.procs[role].wait()

    def wait_healthy(self, timeout: float = 240) -> None:
        """Wait until MLflow, Airflow's API server, the web app (and Flower) answer."""
        running = next(iter(self.procs.values()), None)
        urls: list[tuple[str, tuple[str, str] | None]] = [
            (f"{self.mlflow}/health", None), (f"{self.airflow}/api/v2/monitor/health", None),
            (f"{self.webapp}/healthz", None), (f"{self.url('STATSD_EXPORTER_PORT')}/metrics", None),
        ]  # fmt: skip
        if self.mode == "distributed":
            urls.append((f"{self.flower}/healthcheck", None))
        try:
            if "prometheus" in self.procs or ("platform" in self.procs and shutil.which("prometheus")):
                wait_for_http(f"{self.mlflow}/health", timeout, running if len(self.procs) == 1 else None)
                urls.append((f"{self.prometheus}/-/ready", self.prometheus_auth))  # its login exists by now
            for url, auth in urls:
                wait_for_http(url, timeout, running if len(self.procs) == 1 else None, auth=auth)
        except Exception as exc:
            raise RuntimeError(f"{exc}\n{self.logs()}") from None

    @property
    def instance(self) -> Path:
        """The storage folder every process of this platform carries (fsdl_tools.processes)."""
        return (self.workspace / "storage").resolve()

    def stop(self) -> None:
        for proc in self.procs.values():
            # The supervisor's own stop (honcho's grace, then what is left) must not be cut short.
            stop_process_group(proc, timeout=2 * GRACE_SECONDS + 15)
        self.procs.clear()
        end(self.instance)  # anything that left its process group (honcho's services have their own)
        if self.database is not None:
            subprocess.run(
                ["psql", "-h", "127.0.0.1", "-U", "postgres", "-c", f"DROP DATABASE IF EXISTS {self.database}"],
                capture_output=True, check=False,
            )  # fmt: skip

    def logs(self, tail: int = 2500) -> str:
        return "\n".join(
            f"--- {p.name} ---\n{p.read_text(errors='replace')[-tail:]}" for p in sorted(self.workspace.glob("*.log"))
        )

    # --- the platform's users -----------------------------------------------------------------
    def airflow_client(self) -> AirflowClient:
        """Logged in as Airflow's admin with the generated password."""
        client = AirflowClient(self.airflow, "admin", self.logins["AIRFLOW_ADMIN_PASSWORD"])
        client.login()
        return client

    def webapp_client(self) -> WebappClient:
        """A user of the web app who is also its reviewer (the generated reviewer login)."""
        return WebappClient(self.webapp, reviewer=("reviewer", self.logins["WEBAPP_REVIEWER_PASSWORD"]))

    def mlflow_env(self) -> dict[str, str]:
        """The environment of an MLflow client logged in as the admin (a person promoting versions)."""
        return {
            "MLFLOW_TRACKING_URI": self.mlflow,
            "MLFLOW_TRACKING_USERNAME": "admin",
            "MLFLOW_TRACKING_PASSWORD": self.logins["MLFLOW_AUTH_ADMIN_PASSWORD"],
        }

    def store_location(self, url: str, identity: str = "admin") -> Path:
        """``url`` (s3://...) on the distributed mode's object store, as ``identity`` reaches it."""
        from fsdl_deploy.objectstore import local_endpoint, location_as

        return location_as(identity, url, local_endpoint("127.0.0.1", self.ports["OBJECTSTORE_PORT"]), self.logins)

    def flower_auth(self) -> tuple[str, str]:
        return "admin", self.logins["FLOWER_PASSWORD"]

    def __enter__(self) -> LocalPlatform:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()
