"""``.env.example``: every variable a user may set, with its default and meaning.

The platform's and the web app's settings come from their declarations (``Settings``, ``WebSettings``:
the same text ``fsdl env --doc`` prints); what only deployment knows (the containers' secrets, the
images' build arguments) is declared here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from fsdl_lib.config import Settings
from fsdl_webapp.config import WebSettings

HEADER: Final = """\
Settings of the platform. Copy to .env and edit: `cp .env.example .env`.
Every variable is optional in the local modes (the default is shown); `fsdl env --doc` describes them.
Lines that stay commented keep their default."""

SECTIONS: Final = {
    # A heading before the first variable of each group.
    "AIRFLOW_BIND_HOST": """\
Where each service listens (local modes) or is published (containers). Loopback by default:
open one deliberately (0.0.0.0, or one address), and put TLS in front of it (README, "Security").""",
    "FSDL_STATSD_HOST": """\
Monitoring: Airflow sends StatsD metrics to the exporter (monitoring/statsd_exporter.py), Prometheus
scrapes it and the web app, and evaluates monitoring/alerts.yml.""",
    "AIRFLOW_ADMIN_USER": """\
--- Logins (README, "Security") ---
Passwords are generated on the first start (local modes: storage/airflow/secrets.env) or by
`make secrets` (containers: this file), shown once, and never have a default. Set one here to
choose it yourself; changing one and restarting rotates it.""",
    "AIRFLOW_UID": """\
--- Containers (docker compose) ---
`make secrets` adds the secrets (these and the logins above) to .env, readable by you only;
compose refuses to start without any of them. The local modes make their own under
storage/airflow/secrets.env unless these are set.""",
    "WEBAPP_SECRET_KEY": """\
--- Web app ---
Budgets per client (README, "Security"): a client over one gets HTTP 429 with Retry-After. A
client is its IPv4 address or IPv6 /64; behind a reverse proxy set WEBAPP_TRUSTED_PROXIES (1 for
one proxy) or every client shares the proxy's budget. Budgets are written like 20/minute;300/hour.""",
}

MLFLOW_SECRETS: Final = (
    # (name, default, meaning), listed with the logins.
    ("MLFLOW_AUTH_ADMIN_PASSWORD", "", "Password of the MLflow admin; generated (make secrets)."),
    ("MLFLOW_PIPELINES_PASSWORD", "", "Password of MLflow's service account fsdl-pipelines (the DAGs)."),
    ("MLFLOW_FLASK_SERVER_SECRET_KEY", "", "Signs the MLflow auth app's forms (CSRF)."),
)
"""MLflow's secrets, which only deployment reads."""

CONTAINERS: Final = (
    # (name, default, meaning), after the platform's settings.
    (
        "AIRFLOW_UID",
        "50000",
        "Owner of the files the containers write under data/ and storage/: your user id (`id -u`);\n"
        "`make secrets` writes it (50000 instead of root, so the containers never run as root).",
    ),
    ("POSTGRES_PASSWORD", "", "Password of the airflow role in the compose Postgres."),
    (
        "REDIS_PASSWORD",
        "",
        "Password of the compose Redis (the Celery broker); the local distributed mode uses FSDL_REDIS_URL.",
    ),
    (
        "AIRFLOW__API_AUTH__JWT_SECRET",
        "",
        "Signs the Airflow API's tokens (at least 64 bytes); shared by every Airflow container.",
    ),
    ("AIRFLOW__API__SECRET_KEY", "", "Secret key of the Airflow API server; shared by every Airflow container."),
    (
        "AIRFLOW__CORE__FERNET_KEY",
        "",
        "Encrypts Airflow's connections and variables; shared by every Airflow container.",
    ),
    (
        "TORCH_INDEX_URL",
        "",
        'Build argument of the images (README, "Building without internet"). Unset: PyTorch\'s CPU wheel\n'
        "index; empty: pip's own index.",
    ),
    (
        "FSDL_BAKE_WEIGHTS",
        "1",
        "Build argument: download the ImageNet weights into the images; 0 skips it (then set FSDL_OFFLINE_WEIGHTS=1).",
    ),
    ("MLFLOW_ALLOWED_HOSTS", "localhost:*,127.0.0.1:*,mlflow:5000,mlflow", "Host headers the MLflow server accepts."),
)
"""What only the containers and their builds read."""

MLFLOW_LOGINS_AFTER: Final = "MLFLOW_AUTH_ADMIN_USERNAME"
""":data:`MLFLOW_SECRETS` follow this setting."""


def _default(name: str, default: str) -> str:
    home = str(Path.home())
    return "~" + default.removeprefix(home) if default.startswith(home + "/") else default


def _entry(name: str, default: str, doc: str) -> list[str]:
    return ["", *(f"# {line}" for line in doc.splitlines()), f"#{name}={_default(name, default)}"]


def env_example() -> str:
    """The text of ``.env.example``."""
    lines = [f"# {line}" for line in HEADER.splitlines()]
    platform = list(Settings.variables())
    at = next(i for i, (name, _, _) in enumerate(platform) if name == MLFLOW_LOGINS_AFTER) + 1
    for name, default, doc in [*platform[:at], *MLFLOW_SECRETS, *platform[at:], *CONTAINERS, *WebSettings.variables()]:
        if name in SECTIONS:
            lines += ["", *(f"# {line}" for line in SECTIONS[name].splitlines())]
        lines += _entry(name, default, doc)
    return "\n".join(lines) + "\n"


def documented() -> set[str]:
    """Every variable ``.env.example`` lists."""
    return {name for name, _, _ in (*Settings.variables(), *MLFLOW_SECRETS, *CONTAINERS, *WebSettings.variables())}
