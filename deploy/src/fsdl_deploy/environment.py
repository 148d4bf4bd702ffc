"""The environment each service of the platform runs with, derived from :class:`Settings`.

One home for what the three run modes share. The local modes evaluate ``fsdl-deploy env MODE``
(``scripts/local-env.sh``); ``docker-compose.yml`` holds its containers' environment written out, as
users of Airflow's compose file expect, generated from :func:`container_settings` here by
``make generate`` (``fsdl_deploy.compose``).

The modes differ only where their topology does: ``embedded`` runs Airflow on SQLite with the
LocalExecutor; ``distributed`` runs the CeleryExecutor on Postgres and Redis, and so do the
containers, which reach each other by their service names.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from fsdl_deploy import objectstore
from fsdl_lib.config import Settings
from fsdl_lib.exceptions import ConfigError
from fsdl_lib.resources import available_cores

MODES: Final = ("embedded", "distributed")

OVERRIDABLE: Final = frozenset(
    {
        # Tuning a user may set in .env; the derived value is only the default.
        "AIRFLOW__CORE__PARALLELISM",
        "AIRFLOW__API__WORKERS",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL",
        "MLFLOW_ALLOWED_HOSTS",
        "WEBAPP_MLFLOW_UI_URL",
        "MLFLOW_TRACKING_USERNAME",
        "MLFLOW_TRACKING_PASSWORD",
        # Where the data is, when a user points the distributed mode at a store of their own.
        *objectstore.LOCATIONS,
        "FSDL_S3_ENDPOINT_URL",
        "FSDL_S3_ACCESS_KEY_ID",
        "FSDL_S3_SECRET_ACCESS_KEY",
        "WEBAPP_S3_ACCESS_KEY_ID",
        "WEBAPP_S3_SECRET_ACCESS_KEY",
    }
)

PIPELINES_MLFLOW_USER: Final = "fsdl-pipelines"
"""The DAGs' MLflow account (``mlflow/accounts.py`` creates it)."""

NO_TELEMETRY: Final = {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}
"""No usage telemetry leaves the machine (MLflow's client, server and UI; any tool honouring DO_NOT_TRACK)."""


def required(name: str) -> str:
    """Compose's reference to a secret of ``.env``: compose refuses to start without it."""
    return f"${{{name}:?run `make secrets` first}}"


def chosen(name: str, default: object) -> str:
    """Compose's reference to a setting of ``.env``, with its default."""
    return f"${{{name}:-{default}}}"


CONTAINER_AIRFLOW_HOME: Final = Path("/opt/airflow")

CONTAINER_SETTINGS: Final = {
    # Inside every container: data and state mounted under /opt/fsdl, every server listening on all
    # interfaces at its default port, the others reached by their compose service names.
    "FSDL_DATA_DIR": "/opt/fsdl/data",
    "FSDL_STORAGE_DIR": "/opt/fsdl/storage",
    "AIRFLOW_BIND_HOST": "0.0.0.0",
    "FLOWER_BIND_HOST": "0.0.0.0",
    "MLFLOW_BIND_HOST": "0.0.0.0",
    "WEBAPP_BIND_HOST": "0.0.0.0",
    "MLFLOW_TRACKING_URI": "http://mlflow:5000",
    "FSDL_STATSD_HOST": "statsd-exporter",
    "FSDL_POSTGRES_URL": f"postgresql+psycopg2://airflow:{required('POSTGRES_PASSWORD')}@postgres/airflow",
    "FSDL_REDIS_URL": f"redis://:{required('REDIS_PASSWORD')}@redis:6379/0",
}


def container_settings() -> Settings:
    """The settings inside the containers, logins and secrets as compose references to ``.env``."""
    return Settings.from_env(
        {
            **CONTAINER_SETTINGS,
            "AIRFLOW_ADMIN_USER": chosen("AIRFLOW_ADMIN_USER", "admin"),
            "FLOWER_USER": chosen("FLOWER_USER", "admin"),
            "FLOWER_PASSWORD": required("FLOWER_PASSWORD"),
        }
    )


def mlflow_allowed_hosts() -> str:
    """The Host headers the tracking server answers: this machine, and its compose service name (at any
    port: a worker host reaches it at the port the first host publishes)."""
    return "localhost:*,127.0.0.1:*,mlflow:*,mlflow"


@dataclass(frozen=True)
class AirflowLayout:
    """Where Airflow's files are and how its processes reach the API server, per run mode."""

    home: Path
    dags_folder: Path
    passwords_file: Path
    base_url: str
    """The API server as a browser on the host reaches it (links in the UI and in logs)."""
    execution_api_url: str
    """The API server as the task runners reach it."""

    @classmethod
    def container(cls) -> AirflowLayout:
        """The official Airflow image's paths; the API server by its compose service name, and as a
        browser on the host reaches its published port."""
        return cls(
            home=CONTAINER_AIRFLOW_HOME,
            dags_folder=CONTAINER_AIRFLOW_HOME / "dags",
            passwords_file=CONTAINER_AIRFLOW_HOME / "auth" / "passwords.json",
            base_url=f"http://localhost:{chosen('AIRFLOW_PORT', '8080')}",
            execution_api_url="http://airflow-apiserver:8080/execution/",
        )

    @classmethod
    def local(cls, settings: Settings, root: Path, home: Path | None = None) -> AirflowLayout:
        """Processes on one machine: state under ``storage/airflow`` unless ``AIRFLOW_HOME`` says otherwise."""
        home = home or settings.storage_dir.absolute() / "airflow"
        return cls(
            home=home,
            dags_folder=root / "dags",
            passwords_file=home / "passwords.json",
            base_url=settings.airflow_url,
            execution_api_url=f"{settings.airflow_url}/execution/",
        )


def airflow_environment(settings: Settings, mode: str, layout: AirflowLayout) -> dict[str, str]:
    """The ``AIRFLOW__*`` variables of every Airflow process (API server, scheduler, DAG processor,
    Celery worker, Flower) in ``mode``."""
    _check_mode(mode)
    env = {
        "AIRFLOW__CORE__DAGS_FOLDER": str(layout.dags_folder),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{settings.airflow_admin_user}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(layout.passwords_file),
        "AIRFLOW__API__HOST": settings.airflow_bind_host,
        "AIRFLOW__API__PORT": str(settings.airflow_port),
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__API__BASE_URL": layout.base_url,
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": layout.execution_api_url,
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
        # Metrics as StatsD datagrams to monitoring/statsd_exporter.py, which Prometheus scrapes;
        # DAG and task ids travel as tags (InfluxDB form), not inside the metric names.
        "AIRFLOW__METRICS__STATSD_ON": "True",
        "AIRFLOW__METRICS__STATSD_HOST": settings.statsd_host,
        "AIRFLOW__METRICS__STATSD_PORT": str(settings.statsd_port),
        "AIRFLOW__METRICS__STATSD_PREFIX": "airflow",
        "AIRFLOW__METRICS__STATSD_INFLUXDB_ENABLED": "True",
        "AIRFLOW__METRICS__LEGACY_NAMES_ON": "False",
    }
    if mode == "embedded":
        env["AIRFLOW__CORE__EXECUTOR"] = "LocalExecutor"
        # The LocalExecutor's slots: no more tasks at once than cores (each gets cores // slots threads).
        env["AIRFLOW__CORE__PARALLELISM"] = str(min(4, available_cores()))
        env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{layout.home / 'airflow.db'}"
        return env
    if not settings.flower_password:
        raise ConfigError("FLOWER_PASSWORD", "", "a password (make secrets, or scripts/local-env.sh, makes one)")
    env.update(
        {
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": settings.postgres_url,
            "AIRFLOW__CELERY__BROKER_URL": settings.redis_url,
            # Celery's database backend speaks plain SQLAlchemy URLs, without the driver suffix.
            "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + settings.postgres_url.replace("+psycopg2", ""),
            # Each task may import torch and load ResNet50 (about 1 GB): Celery's default of 16 would not fit.
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(settings.celery_concurrency),
            "AIRFLOW__CELERY__FLOWER_HOST": settings.flower_bind_host,
            "AIRFLOW__CELERY__FLOWER_PORT": str(settings.flower_port),
            "AIRFLOW__CELERY__FLOWER_BASIC_AUTH": f"{settings.flower_user}:{settings.flower_password}",
            # Longer than the longest task (first extraction over a full dataset), or Redis hands a
            # running task to a second worker.
            "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__VISIBILITY_TIMEOUT": "21600",
            "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "True",
        }
    )
    return env


def mlflow_server_environment(settings: Settings) -> dict[str, str]:
    """The tracking server's variables: SQLite backend and artifacts under ``storage/mlflow``, logins."""
    return {
        "MLFLOW_BACKEND_STORE_URI": settings.mlflow_backend_store_uri,
        "MLFLOW_ARTIFACTS_DESTINATION": str(settings.mlflow_artifacts_dir),
        # One process owns the SQLite file: no background job workers, no "database is locked".
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        # mlflow/accounts.py writes this file and the accounts before the server starts.
        "MLFLOW_AUTH_CONFIG_PATH": str(settings.mlflow_auth_config),
    }


def local_environment(
    settings: Settings, mode: str, *, root: Path, environ: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Everything a local mode adds to the settings for its processes.

    Variables in :data:`OVERRIDABLE` that ``environ`` already sets keep their value.
    """
    environ = os.environ if environ is None else environ
    _check_mode(mode)
    home = Path(environ["AIRFLOW_HOME"]) if environ.get("AIRFLOW_HOME") else None
    layout = AirflowLayout.local(settings, root, home)
    env = {
        "AIRFLOW_HOME": str(layout.home),
        **airflow_environment(settings, mode, layout),
        **mlflow_server_environment(settings),
        **NO_TELEMETRY,
        "MLFLOW_ALLOWED_HOSTS": mlflow_allowed_hosts(),
        "WEBAPP_MLFLOW_UI_URL": settings.mlflow_url,
        # Airflow's tasks use the pipelines' service account; the web app its own (WEBAPP_MLFLOW_*).
        "MLFLOW_TRACKING_USERNAME": PIPELINES_MLFLOW_USER,
        "MLFLOW_TRACKING_PASSWORD": environ.get("MLFLOW_PIPELINES_PASSWORD", ""),
    }
    if mode == "distributed":  # the data on the object store (objectstore-start runs it)
        endpoint = objectstore.local_endpoint(settings.objectstore_bind_host, settings.objectstore_port)
        env.update(objectstore.service_environment(endpoint, objectstore.credentials_from(environ)))
    for name in OVERRIDABLE & env.keys():
        if environ.get(name):
            env[name] = environ[name]
    return env


def _check_mode(mode: str) -> None:
    if mode not in MODES:
        raise ConfigError("FSDL_MODE", mode, " or ".join(MODES))
