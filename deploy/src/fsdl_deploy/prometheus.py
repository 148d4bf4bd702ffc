"""Prometheus's configuration (what it scrapes, with which limits, and its rules) and its login."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

import bcrypt

from fsdl_lib.config import Settings, local_url
from fsdl_lib.exceptions import ConfigError

SCRAPE_INTERVAL: Final = "15s"

SCRAPE_LIMITS: Final = {
    "sample_limit": 20000,
    "label_limit": 32,
    "label_name_length_limit": 128,
    "label_value_length_limit": 1024,
    "body_size_limit": "32MB",
}
"""What one scrape may bring: a target over a limit fails its scrape (up = 0) instead of filling
Prometheus's memory; the StatsD exporter's own bounds stay well inside them."""

CONTAINER_TARGETS: Final = {"webapp": "webapp:8000", "airflow": "statsd-exporter:9102"}
"""The scrape targets by compose service name (docker-compose.yml)."""

CONTAINER_RULES: Final = "/etc/prometheus/alerts.yml"


def prometheus_config(*, webapp: str, airflow: str, rules: str) -> dict[str, Any]:
    """Prometheus's configuration: what it scrapes (``host:port`` of each) and the alert rules file.

    ``airflow`` is the StatsD exporter (monitoring/statsd_exporter.py) that Airflow's scheduler,
    DAG processor, API server and workers send their metrics to. Prometheus does not scrape itself:
    its own endpoints need its login, which no configuration file should hold in clear.
    """
    return {
        "global": {"scrape_interval": SCRAPE_INTERVAL, "evaluation_interval": SCRAPE_INTERVAL},
        "rule_files": [rules],
        "scrape_configs": [
            {"job_name": job, "static_configs": [{"targets": [target]}], **SCRAPE_LIMITS}
            for job, target in (("webapp", webapp), ("airflow", airflow))
        ],
    }


def container_prometheus_config() -> dict[str, Any]:
    """:func:`prometheus_config` for docker-compose.yml (``monitoring/prometheus.yml`` is generated from it)."""
    return prometheus_config(**CONTAINER_TARGETS, rules=CONTAINER_RULES)


def local_prometheus_config(settings: Settings, root: Path) -> dict[str, Any]:
    """:func:`prometheus_config` for the local modes: every service on this machine."""

    def target(url: str) -> str:
        return url.removeprefix("http://")

    exporter = local_url(settings.statsd_host, settings.statsd_exporter_port)
    return prometheus_config(
        webapp=target(settings.webapp_url),
        airflow=target(exporter),
        rules=str(root / "monitoring" / "alerts.yml"),
    )


def prometheus_web_config(settings: Settings) -> dict[str, Any]:
    """Prometheus's web configuration (``--web.config.file``): its one login, the password as a
    bcrypt hash, as Prometheus requires."""
    if not settings.prometheus_password:
        raise ConfigError("PROMETHEUS_PASSWORD", "", "a password (make secrets, or scripts/local-env.sh, makes one)")
    hashed = bcrypt.hashpw(settings.prometheus_password.encode(), bcrypt.gensalt()).decode()
    return {"basic_auth_users": {settings.prometheus_user: hashed}}
