"""Every environment variable the platform reads, declared once: name, type, default and meaning.

Reading is explicit and has no side effects: importing this module creates no directory and opens
no connection. Call :func:`load_settings` (or ``Settings.from_env``) where the values are needed.

``fsdl env`` prints the resolved values as shell assignments (the local run modes source them), and
``fsdl env --doc`` prints this table for people; ``.env.example`` lists the same variables.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_type_hints

from fsdl_lib.exceptions import ConfigError

if TYPE_CHECKING:
    from fsdl_lib.storage import ObjectStore

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})


def setting(env: str, default: Any, doc: str) -> Any:
    """Declare a field of an :class:`EnvSettings` dataclass: its variable, default and meaning."""
    return field(default=default, metadata={"env": env, "doc": doc})


class EnvSettings:
    """Base of frozen dataclasses whose fields are declared with :func:`setting`.

    Each component (the library, the web app) declares its variables in one such class.
    """

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Any:
        """Build settings from ``environ`` (default: ``os.environ``); unset variables keep defaults."""
        environ = os.environ if environ is None else environ
        hints = get_type_hints(cls)
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):  # type: ignore[arg-type]
            raw = environ.get(f.metadata["env"])
            if raw is not None:
                values[f.name] = _parse(f.metadata["env"], raw, hints[f.name])
        return cls(**values)

    @classmethod
    def variables(cls) -> list[tuple[str, str, str]]:
        """(name, default as text, meaning) of every variable, in declaration order."""
        return [
            (f.metadata["env"], _format(f.default), f.metadata["doc"])
            for f in dataclasses.fields(cls)  # type: ignore[arg-type]
        ]

    def as_environment(self) -> dict[str, str]:
        """The settings as environment variables, paths made absolute (for child processes)."""
        env: dict[str, str] = {}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if isinstance(value, Path):
                value = value.expanduser().absolute()
            env[f.metadata["env"]] = _format(value)
        return env


@dataclass(frozen=True)
class Settings(EnvSettings):
    """The platform's settings. Relative paths are taken from the working directory."""

    data_dir: Path = setting(
        "FSDL_DATA_DIR",
        Path("data"),
        "Root of raw/, processed/ and feedback/ data when FSDL_DATA_URL is empty (a folder every service shares).",
    )
    data_url: str = setting(
        "FSDL_DATA_URL",
        "",
        "Where raw/ and processed/ data live: a folder, or s3://bucket/prefix; empty: FSDL_DATA_DIR.",
    )
    feedback_url: str = setting(
        "FSDL_FEEDBACK_URL",
        "",
        "Where the web app keeps accepted answers for the sync (a folder or s3://...); empty: feedback/ of the data.",
    )
    task_logs_url: str = setting(
        "FSDL_TASK_LOGS_URL",
        "",
        "Where Airflow keeps its task logs for the UI besides the worker's disk (s3://bucket/prefix: remote "
        "logging through fsdl_deploy.task_logs); empty: the worker's disk only.",
    )
    s3_endpoint_url: str = setting(
        "FSDL_S3_ENDPOINT_URL", "", "The object store's S3 endpoint (http://host:port) for s3:// locations."
    )
    s3_access_key_id: str = setting(
        "FSDL_S3_ACCESS_KEY_ID",
        "",
        "This service's access key on the object store (each service has its own).",
    )
    s3_secret_access_key: str = setting("FSDL_S3_SECRET_ACCESS_KEY", "", "The secret of that access key.")
    storage_dir: Path = setting(
        "FSDL_STORAGE_DIR",
        Path("storage"),
        "Root of service state: the MLflow database and artifacts, Airflow's local home, logs.",
    )
    offline_weights: bool = setting(
        "FSDL_OFFLINE_WEIGHTS",
        False,
        "Use deterministic random ResNet50 weights instead of ImageNet ones (tests, offline demos).",
    )
    weights_seed: int = setting(
        "FSDL_WEIGHTS_SEED", 0, "Seed of the random weights used when FSDL_OFFLINE_WEIGHTS is on."
    )
    weights_download: bool = setting(
        "FSDL_WEIGHTS_DOWNLOAD",
        True,
        "Allow downloading the ImageNet weights into TORCH_HOME when they are not cached.",
    )
    image_size: int = setting("FSDL_IMAGE_SIZE", 224, "Side in pixels that images are resized to before ResNet50.")
    device: str = setting("FSDL_DEVICE", "auto", "Torch device for feature extraction: auto, cpu, cuda or cuda:N.")
    batch_size: int = setting("FSDL_BATCH_SIZE", 0, "Images per ResNet50 forward pass; 0 picks one for the device.")
    task_threads: int = setting(
        "FSDL_TASK_THREADS",
        0,
        "Threads (BLAS, OpenMP, torch) of one training task; 0: the pool slots the task holds.",
    )
    compute_slots: int = setting(
        "FSDL_COMPUTE_SLOTS",
        0,
        "Slots of Airflow's fsdl_compute pool, one per thread the training tasks may run at once; 0: the cores.",
    )
    compute_queue: str = setting(
        "FSDL_COMPUTE_QUEUE",
        "",
        "Celery queue of the compute tasks (extraction, training): a queue only some workers take, a GPU or "
        "big-CPU host's (`airflow celery worker --queues`); empty: Airflow's default queue, as every other task.",
    )
    worker_queues: str = setting(
        "FSDL_WORKER_QUEUES",
        "default",
        "Celery queues this host's worker takes, comma-separated: 'default' is Airflow's; add FSDL_COMPUTE_QUEUE "
        "where this worker should run compute tasks too.",
    )
    extract_shard_size: int = setting(
        "FSDL_EXTRACT_SHARD_SIZE",
        1024,
        "New images per extraction task: create_dataset maps the extraction over shards of this many (rounded "
        "up to whole batches), which workers on several hosts take at once.",
    )
    max_image_pixels: int = setting(
        "FSDL_MAX_IMAGE_PIXELS",
        25_000_000,
        "Largest image (width x height) accepted; protects against decompression bombs.",
    )
    mlflow_tracking_uri: str = setting(
        "MLFLOW_TRACKING_URI",
        "",
        "MLflow tracking server used by every client; empty means the local one (MLFLOW_BIND_HOST:MLFLOW_PORT).",
    )
    scenes_model_name: str = setting(
        "FSDL_SCENES_MODEL_NAME", "intel-scenes", "Registered model name of the scene classifier."
    )
    scenes_experiment: str = setting(
        "FSDL_SCENES_EXPERIMENT", "intel-scenes", "MLflow experiment of the scene training runs."
    )
    auto_promote: bool = setting(
        "FSDL_AUTO_PROMOTE",
        False,
        "Let the scene DAG move 'production' to a challenger that beats it on the same test split.",
    )
    wine_model_name: str = setting(
        "FSDL_WINE_MODEL_NAME", "wine-quality", "Registered model name of the wine regressor."
    )
    wine_experiment: str = setting(
        "FSDL_WINE_EXPERIMENT", "wine-quality", "MLflow experiment of the wine training runs."
    )
    code_version: str = setting(
        "FSDL_CODE_VERSION",
        "",
        "Code version recorded with every run; empty means the git commit, else the fsdl_lib version.",
    )
    airflow_bind_host: str = setting(
        "AIRFLOW_BIND_HOST", "127.0.0.1", "Address the Airflow UI and REST API listen on (0.0.0.0: every interface)."
    )
    airflow_port: int = setting("AIRFLOW_PORT", 8080, "Port of the Airflow UI and REST API.")
    mlflow_bind_host: str = setting(
        "MLFLOW_BIND_HOST", "127.0.0.1", "Address the MLflow UI and tracking server listen on."
    )
    mlflow_port: int = setting("MLFLOW_PORT", 5000, "Port of the MLflow UI and tracking server.")
    webapp_bind_host: str = setting(
        "WEBAPP_BIND_HOST", "127.0.0.1", "Address the web app listens on (0.0.0.0 to serve other machines)."
    )
    webapp_port: int = setting("WEBAPP_PORT", 8000, "Port of the web app.")
    flower_bind_host: str = setting("FLOWER_BIND_HOST", "127.0.0.1", "Address Flower listens on.")
    flower_port: int = setting("FLOWER_PORT", 5555, "Port of Flower (distributed modes only).")
    retrain_on_drift: bool = setting(
        "FSDL_RETRAIN_ON_DRIFT",
        False,
        "When drift persists, let the drift watch DAG start a full retraining (asset intel_scenes_drift).",
    )
    statsd_host: str = setting(
        "FSDL_STATSD_HOST", "127.0.0.1", "Where Airflow sends its StatsD metrics: the exporter's address (UDP)."
    )
    statsd_port: int = setting("FSDL_STATSD_PORT", 9125, "Port of those StatsD datagrams.")
    statsd_exporter_port: int = setting(
        "STATSD_EXPORTER_PORT", 9102, "Port of the exporter's /metrics (Airflow's metrics, for Prometheus)."
    )
    objectstore_bind_host: str = setting(
        "OBJECTSTORE_BIND_HOST",
        "127.0.0.1",
        "Address the object store of make up-distributed (SeaweedFS) listens on; loopback unless workers on "
        "other hosts need it.",
    )
    objectstore_port: int = setting(
        "OBJECTSTORE_PORT", 8333, "Port of that store's S3 API; its internal servers take the next seven."
    )
    prometheus_bind_host: str = setting("PROMETHEUS_BIND_HOST", "127.0.0.1", "Address Prometheus listens on.")
    prometheus_port: int = setting("PROMETHEUS_PORT", 9090, "Port of Prometheus (its UI, API and alerts).")
    prometheus_user: str = setting("PROMETHEUS_USER", "admin", "Login of Prometheus's UI and API.")
    prometheus_password: str = setting(
        "PROMETHEUS_PASSWORD", "", "Password of that login; empty: generated on first start (make secrets)."
    )
    postgres_url: str = setting(
        "FSDL_POSTGRES_URL",
        "postgresql+psycopg2://postgres@127.0.0.1:5432/fsdl_airflow",
        "Airflow's metadata database in the distributed modes (the local mode creates it if missing).",
    )
    redis_url: str = setting("FSDL_REDIS_URL", "redis://127.0.0.1:6379/0", "Celery broker of the distributed modes.")
    celery_concurrency: int = setting(
        "FSDL_CELERY_CONCURRENCY", 2, "Tasks one Celery worker runs at once (each may load ResNet50, about 1 GB)."
    )
    airflow_admin_user: str = setting("AIRFLOW_ADMIN_USER", "admin", "Login of the Airflow admin user.")
    airflow_admin_password: str = setting(
        "AIRFLOW_ADMIN_PASSWORD", "", "Password of that user; empty: generated on first start (make secrets)."
    )
    mlflow_admin_user: str = setting(
        "MLFLOW_AUTH_ADMIN_USERNAME", "admin", "Login of the MLflow admin (the people who promote versions)."
    )
    flower_user: str = setting("FLOWER_USER", "admin", "Login of Flower (distributed modes only).")
    flower_password: str = setting(
        "FLOWER_PASSWORD", "", "Password of that login; empty: generated on first start (make secrets)."
    )
    torch_home: Path = setting(
        "TORCH_HOME",
        Path.home() / ".cache" / "torch",
        "Where torch caches downloaded weights (read by torch itself).",
    )

    def __post_init__(self) -> None:
        if not self.mlflow_tracking_uri:
            object.__setattr__(self, "mlflow_tracking_uri", self.mlflow_url)

    # Where local clients reach each service: its bind address, or loopback when it binds them all.
    @property
    def compute_pool_slots(self) -> int:
        """Slots of Airflow's compute pool: FSDL_COMPUTE_SLOTS, or this machine's cores."""
        from fsdl_lib.resources import compute_slots

        return compute_slots(self.compute_slots)

    @property
    def airflow_url(self) -> str:
        return local_url(self.airflow_bind_host, self.airflow_port)

    @property
    def mlflow_url(self) -> str:
        return local_url(self.mlflow_bind_host, self.mlflow_port)

    @property
    def webapp_url(self) -> str:
        return local_url(self.webapp_bind_host, self.webapp_port)

    @property
    def flower_url(self) -> str:
        return local_url(self.flower_bind_host, self.flower_port)

    @property
    def prometheus_url(self) -> str:
        return local_url(self.prometheus_bind_host, self.prometheus_port)

    # Locations derived from the data's root (a folder or a bucket: fsdl_lib.storage); one place
    # names each.
    @property
    def object_store(self) -> ObjectStore:
        """The object store s3:// locations are on, with this service's credentials."""
        from fsdl_lib.storage import ObjectStore

        return ObjectStore(self.s3_endpoint_url, self.s3_access_key_id, self.s3_secret_access_key)

    def location(self, url: str | Path) -> Path:
        """The location ``url`` names, on :attr:`object_store` when it is an s3:// URL."""
        from fsdl_lib.storage import location

        return location(url, self.object_store)

    @property
    def data_root(self) -> Path:
        return self.location(self.data_url or self.data_dir)

    @property
    def raw_dir(self) -> Path:
        return self.data_root / "raw"

    @property
    def processed_dir(self) -> Path:
        return self.data_root / "processed"

    @property
    def feedback_dir(self) -> Path:
        return self.location(self.feedback_url) if self.feedback_url else self.data_root / "feedback"

    @property
    def scenes_raw_dir(self) -> Path:
        """``<split>/<class>/<image>`` folders of the scene dataset."""
        return self.raw_dir / "intel_scenes"

    @property
    def scenes_feedback_dir(self) -> Path:
        return self.feedback_dir / "intel_scenes"

    @property
    def drift_status_path(self) -> Path:
        """Where the web app leaves the served model's drift status for the drift watch DAG: beside
        the feedback, the one place both sides share (Airflow never reaches the public web app)."""
        return self.feedback_dir / "drift" / f"{self.scenes_model_name}.json"

    @property
    def wine_csv(self) -> Path:
        return self.raw_dir / "wine" / "winequality-red.csv"

    @property
    def mlflow_dir(self) -> Path:
        """The MLflow server's state: its database, artifacts and logins."""
        return self.storage_dir / "mlflow"

    @property
    def mlflow_backend_store_uri(self) -> str:
        return f"sqlite:///{self.mlflow_dir.absolute() / 'mlflow.db'}"

    @property
    def mlflow_artifacts_dir(self) -> Path:
        return self.mlflow_dir.absolute() / "artifacts"

    @property
    def mlflow_auth_config(self) -> Path:
        """The basic-auth app's configuration (``mlflow/accounts.py`` writes it, the user store beside it)."""
        return self.mlflow_dir.absolute() / "basic_auth.ini"


def local_url(bind_host: str, port: int) -> str:
    """The URL a local client uses for a server bound to ``bind_host`` (loopback when it binds all)."""
    host = "127.0.0.1" if bind_host in ("", "0.0.0.0", "::", "[::]") else bind_host
    return f"http://{host}:{port}"


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Shorthand for :meth:`Settings.from_env`."""
    settings: Settings = Settings.from_env(environ)
    return settings


def _format(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


def _parse(name: str, raw: str, kind: type) -> Any:
    text = raw.strip()
    if kind is bool:
        lowered = text.lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise ConfigError(name, raw, "a boolean (1/0, true/false, yes/no, on/off)")
    if kind is int:
        try:
            number = int(text)
        except ValueError:
            raise ConfigError(name, raw, "an integer") from None
        if number < 0:
            raise ConfigError(name, raw, "a non-negative integer")
        return number
    if kind is float:
        try:
            real = float(text)
        except ValueError:
            raise ConfigError(name, raw, "a number") from None
        if not 0 <= real < float("inf"):
            raise ConfigError(name, raw, "a non-negative number")
        return real
    if kind is Path:
        if not text:
            raise ConfigError(name, raw, "a path")
        return Path(text).expanduser()
    return text
