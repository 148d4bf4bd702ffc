"""The ``fsdl-deploy`` command: what the platform's start-up scripts need from this package."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path

from fsdl_deploy import objectstore, workers
from fsdl_deploy.environment import MODES, local_environment
from fsdl_deploy.prometheus import local_prometheus_config, prometheus_web_config
from fsdl_deploy.secrets import write_airflow_passwords
from fsdl_lib.config import load_settings
from fsdl_lib.exceptions import FsdlError


def _env(args: argparse.Namespace) -> int:
    env = local_environment(load_settings(), args.mode, root=Path.cwd())
    for name, value in env.items():
        print(f"export {name}={shlex.quote(value)}")
    return 0


def _prometheus_config(args: argparse.Namespace) -> int:
    # JSON is YAML: Prometheus reads it as its configuration file.
    print(json.dumps(local_prometheus_config(load_settings(), args.root.absolute()), indent=2))
    return 0


def _prometheus_web_config(args: argparse.Namespace) -> int:
    print(json.dumps(prometheus_web_config(load_settings()), indent=2))
    return 0


def _airflow_passwords(args: argparse.Namespace) -> int:
    settings = load_settings()
    write_airflow_passwords(args.file, settings.airflow_admin_user, settings.airflow_admin_password)
    return 0


def _objectstore_start(args: argparse.Namespace) -> int:
    settings = load_settings()
    own = objectstore.local_endpoint(settings.objectstore_bind_host, settings.objectstore_port)
    if settings.s3_endpoint_url != own:
        print(f"the data is on the store at {settings.s3_endpoint_url} (FSDL_S3_ENDPOINT_URL): none is started here")
        return 0
    folder = settings.storage_dir.absolute() / "objectstore"
    endpoint = objectstore.start_local(
        folder,
        objectstore.local_ports(settings.objectstore_port),
        objectstore.credentials_from(os.environ),
        objectstore.gateway_tls_from(os.environ),
        host=settings.objectstore_bind_host,
    )
    print(f"object store at {endpoint} (data in {folder}), buckets: {', '.join(objectstore.BUCKETS.values())}")
    return 0


def _objectstore_prepare(args: argparse.Namespace) -> int:
    settings = load_settings()
    if not settings.s3_endpoint_url:
        raise ValueError("FSDL_S3_ENDPOINT_URL is not set: no object store to prepare")
    created = objectstore.wait_and_prepare(
        settings.s3_endpoint_url, objectstore.admin_credentials_from(os.environ), timeout=args.timeout
    )
    print(f"object store at {settings.s3_endpoint_url}: buckets {', '.join(objectstore.BUCKETS.values())} "
          f"(created {', '.join(created) or 'none'}), policies set")  # fmt: skip
    return 0


def _code_fingerprint(args: argparse.Namespace) -> int:
    settings = load_settings()
    dags = Path(os.environ.get("AIRFLOW__CORE__DAGS_FOLDER") or args.dags)
    if args.check:
        mine = workers.check_fingerprint(settings.data_root, dags)
        print(f"this worker's DAGs and fsdl_lib are the first host's (sha256 {mine.sha256[:12]}, {mine.files} files)")
    else:
        mine = workers.publish_fingerprint(settings.data_root, dags)
        print(f"published the code fingerprint for worker hosts: sha256 {mine.sha256[:12]} ({mine.files} files)")
    return 0


def _results_database(args: argparse.Namespace) -> int:
    admin = os.environ.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "")
    backend = os.environ.get("AIRFLOW__CELERY__RESULT_BACKEND", "")
    if not admin.startswith("postgresql"):
        raise ValueError("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN is not a Postgres URL: no results database to prepare")
    created = workers.prepare_results_database(admin, backend)
    print(f"Celery's results database {workers.RESULTS_DATABASE} ({'created' if created else 'present'}), "
          f"owned by the role {workers.RESULTS_ROLE}")  # fmt: skip
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fsdl-deploy", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    env = sub.add_parser(
        "env", help="print, as shell exports, what the services of a local mode add to the settings (Airflow, MLflow)"
    )
    env.add_argument("mode", metavar="MODE", help=" or ".join(MODES) + " (FSDL_MODE of scripts/local-env.sh)")
    env.set_defaults(func=_env)

    prometheus = sub.add_parser(
        "prometheus-config", help="print Prometheus's configuration for the local modes (targets on this machine)"
    )
    prometheus.add_argument("--root", type=Path, default=Path.cwd(), help="the repository (for monitoring/alerts.yml)")
    prometheus.set_defaults(func=_prometheus_config)

    web = sub.add_parser(
        "prometheus-web-config", help="print Prometheus's web configuration: its login (PROMETHEUS_PASSWORD, hashed)"
    )
    web.set_defaults(func=_prometheus_web_config)

    passwords = sub.add_parser(
        "airflow-passwords", help="write Airflow's password file: AIRFLOW_ADMIN_USER with AIRFLOW_ADMIN_PASSWORD (0600)"
    )
    passwords.add_argument("file", type=Path)
    passwords.set_defaults(func=_airflow_passwords)

    store = sub.add_parser(
        "objectstore-start",
        help="start the local modes' object store (SeaweedFS) unless it runs; create its buckets and policies",
    )
    store.set_defaults(func=_objectstore_start)

    prepare = sub.add_parser(
        "objectstore-prepare",
        help="wait for the store at FSDL_S3_ENDPOINT_URL, then create its buckets and set their policies as "
        "the admin identity (OBJECTSTORE_ADMIN_ACCESS_KEY and _SECRET_KEY)",
    )
    prepare.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for the store (default 120)")
    prepare.set_defaults(func=_objectstore_prepare)

    fingerprint = sub.add_parser(
        "code-fingerprint",
        help="publish this host's DAGs' and fsdl_lib's fingerprint to the data location (first host), or --check "
        "that this worker host's are the same (exit 3 if not)",
    )
    fingerprint.add_argument("--check", action="store_true", help="compare instead of publishing")
    fingerprint.add_argument("--dags", default="dags", help="the DAG folder, unless AIRFLOW__CORE__DAGS_FOLDER is set")
    fingerprint.set_defaults(func=_code_fingerprint)

    results = sub.add_parser(
        "results-database",
        help="create Celery's results database and its role (AIRFLOW__CELERY__RESULT_BACKEND) as the metadata "
        "database's owner (AIRFLOW__DATABASE__SQL_ALCHEMY_CONN)",
    )
    results.set_defaults(func=_results_database)

    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except workers.CodeMismatchError as exc:
        print(f"fsdl-deploy {args.command}: {exc}", file=sys.stderr)
        return 3
    except (FsdlError, ValueError, FileNotFoundError) as exc:
        print(f"fsdl-deploy {args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
