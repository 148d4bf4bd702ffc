"""The platform's processes: one command per role, written out for each run mode.

The local modes run them from the Procfiles (honcho, ``scripts/up.sh``), the containers from
``docker-compose.yml``; both are generated from :data:`ROLES` (``make generate``), so a role runs the
same program with the same options everywhere and only the values differ: ``$VARIABLES`` of the local
environment in a Procfile, the containers' fixed addresses and paths in compose.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Final

from fsdl_deploy.environment import chosen, mlflow_allowed_hosts


@dataclass(frozen=True)
class Value:
    """An argument whose value differs by mode: a local shell expression, or the container's value."""

    local: str
    container: str


Arg = str | Value


@dataclass(frozen=True)
class Role:
    argv: tuple[Arg, ...]
    modes: frozenset[str] = frozenset({"embedded", "distributed"})
    image_entrypoint: tuple[str, ...] = ()
    """What the container image's entrypoint already runs (the Airflow image runs ``airflow``)."""

    def local(self) -> str:
        return " ".join(arg.local if isinstance(arg, Value) else shlex.quote(arg) for arg in self.argv)

    def container(self) -> list[str]:
        argv = [arg.container if isinstance(arg, Value) else arg for arg in self.argv]
        return argv[len(self.image_entrypoint) :]


def _env(name: str, container: object) -> Value:
    return Value(f'"${name}"', str(container))


_AIRFLOW: Final = ("airflow",)
_DISTRIBUTED: Final = frozenset({"distributed"})

_MLFLOW: Final = (
    "mlflow", "server", "--app-name", "basic-auth",
    "--host", _env("MLFLOW_BIND_HOST", "0.0.0.0"),
    "--port", _env("MLFLOW_PORT", 5000),
    "--workers", "1",
    "--allowed-hosts", Value('"$MLFLOW_ALLOWED_HOSTS"', chosen("MLFLOW_ALLOWED_HOSTS", mlflow_allowed_hosts())),
)  # fmt: skip
_STATSD_EXPORTER: Final = (
    "python", "monitoring/statsd_exporter.py",
    "--statsd-host", _env("FSDL_STATSD_HOST", "0.0.0.0"),
    "--statsd-port", _env("FSDL_STATSD_PORT", 9125),
    "--host", _env("FSDL_STATSD_HOST", "0.0.0.0"),
    "--port", _env("STATSD_EXPORTER_PORT", 9102),
)  # fmt: skip
_PROMETHEUS: Final = (
    "prometheus",
    "--config.file", Value('"$FSDL_STORAGE_DIR/prometheus/prometheus.yml"', "/etc/prometheus/prometheus.yml"),
    "--storage.tsdb.path", Value('"$FSDL_STORAGE_DIR/prometheus/data"', "/prometheus"),
    "--web.listen-address", Value('"$PROMETHEUS_BIND_HOST:$PROMETHEUS_PORT"', "0.0.0.0:9090"),
    "--web.config.file", Value('"$FSDL_STORAGE_DIR/prometheus/web.yml"', "/etc/prometheus/web.yml"),
)  # fmt: skip

_QUEUES: Final = chosen("FSDL_WORKER_QUEUES", "default")

ROLES: Final = {
    "airflow-apiserver": Role(("airflow", "api-server"), image_entrypoint=_AIRFLOW),
    "airflow-scheduler": Role(("airflow", "scheduler"), image_entrypoint=_AIRFLOW),
    "airflow-dag-processor": Role(("airflow", "dag-processor"), image_entrypoint=_AIRFLOW),
    "airflow-worker": Role(
        ("airflow", "celery", "worker", "--queues", _env("FSDL_WORKER_QUEUES", _QUEUES)),
        _DISTRIBUTED,
        image_entrypoint=_AIRFLOW,
    ),
    "flower": Role(("airflow", "celery", "flower"), _DISTRIBUTED, image_entrypoint=_AIRFLOW),
    "mlflow": Role(_MLFLOW),
    "webapp": Role(("gunicorn", "-c", "python:fsdl_webapp.gunicorn_conf", "fsdl_webapp:create_app()")),
    "statsd-exporter": Role(_STATSD_EXPORTER),
    "prometheus": Role(_PROMETHEUS, image_entrypoint=("prometheus",)),
}

PROCFILE_HEADERS: Final = {
    "embedded": (
        "Embedded mode (make up): Airflow on SQLite with the LocalExecutor, MLflow, the web app.\n"
        "Every variable comes from scripts/local-env.sh. Prometheus runs where its binary is installed\n"
        "(scripts/up.sh leaves it out otherwise); the StatsD exporter serves Airflow's metrics for it to scrape."
    ),
    "distributed": (
        "Distributed mode (make up-distributed): Postgres and Redis (already running), Airflow with the\n"
        "CeleryExecutor, a Celery worker and Flower, MLflow, the web app, the StatsD exporter and Prometheus\n"
        "(where its binary is installed). Variables: scripts/local-env.sh."
    ),
}

PROCFILES: Final = {"embedded": "Procfile", "distributed": "Procfile.distributed"}


def procfile(mode: str, banner: str) -> str:
    """The Procfile of local mode ``mode``."""
    lines = [f"# {line}" for line in (banner + "\n" + PROCFILE_HEADERS[mode]).splitlines()]
    lines += [f"{name}: {role.local()}" for name, role in ROLES.items() if mode in role.modes]
    return "\n".join(lines) + "\n"
