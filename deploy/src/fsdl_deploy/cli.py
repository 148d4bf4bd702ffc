"""The ``fsdl-deploy`` command: what the platform's start-up scripts need from this package."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

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

    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except (FsdlError, ValueError) as exc:
        print(f"fsdl-deploy {args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
