"""Add the platform's secrets that FILE (an env file) lacks, generated; values already there are kept.

usage: python -m fsdl_deploy.secrets FILE [--compose]

--compose also adds AIRFLOW_UID, POSTGRES_PASSWORD, REDIS_PASSWORD and CELERY_RESULTS_PASSWORD (only docker compose
uses them). The file is
left readable by its owner only (0600). The logins it generates are printed once, on standard
output; later runs print nothing (the values stay in FILE).

The standard library only (and the `openssl` command for the object store gateway's key): `make secrets` runs it
with the system's Python, before any venv exists.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import sys
from pathlib import Path

from fsdl_deploy.files import write_private
from fsdl_deploy.objectstore import GATEWAY_TLS, IDENTITIES, credential_variables, gateway_tls


def token(length: int = 32) -> str:
    """Letters, digits, '-' and '_' only: safe unquoted in env files, shell, JSON, URLs and Flower's
    `user:password` list."""
    return secrets.token_urlsafe(length)


SECRETS = {
    "AIRFLOW__API_AUTH__JWT_SECRET": lambda: token(64),  # Airflow wants >= 64 bytes
    "AIRFLOW__API__SECRET_KEY": token,
    "AIRFLOW__CORE__FERNET_KEY": lambda: base64.urlsafe_b64encode(os.urandom(32)).decode(),
    "WEBAPP_SECRET_KEY": token,
    "MLFLOW_FLASK_SERVER_SECRET_KEY": token,
    # Logins: people use the first five; the services use the MLflow service accounts.
    "AIRFLOW_ADMIN_PASSWORD": lambda: token(18),
    "MLFLOW_AUTH_ADMIN_PASSWORD": lambda: token(18),
    "FLOWER_PASSWORD": lambda: token(18),
    "WEBAPP_REVIEWER_PASSWORD": lambda: token(18),
    "PROMETHEUS_PASSWORD": lambda: token(18),
    "MLFLOW_PIPELINES_PASSWORD": token,
    "WEBAPP_MLFLOW_PASSWORD": token,
}
for _identity in IDENTITIES:  # the object store's (fsdl_deploy.objectstore): an access key id and a secret each
    _key, _secret = credential_variables(_identity)
    SECRETS[_key] = lambda prefix=_identity: f"{prefix}-{token(9)}"
    SECRETS[_secret] = token
SECRETS[GATEWAY_TLS] = gateway_tls


def _airflow_uid() -> str:
    """The user the containers write data/ and storage/ as: yours, or Airflow's 50000 instead of root."""
    return str(os.getuid() or 50000)


COMPOSE = {
    "AIRFLOW_UID": _airflow_uid,
    "POSTGRES_PASSWORD": token,
    "REDIS_PASSWORD": token,
    "CELERY_RESULTS_PASSWORD": token,
}

LOGINS = {  # printed once when generated: (service, user variable, default user)
    "AIRFLOW_ADMIN_PASSWORD": ("Airflow", "AIRFLOW_ADMIN_USER", "admin"),
    "MLFLOW_AUTH_ADMIN_PASSWORD": ("MLflow", "MLFLOW_AUTH_ADMIN_USERNAME", "admin"),
    "FLOWER_PASSWORD": ("Flower", "FLOWER_USER", "admin"),
    "WEBAPP_REVIEWER_PASSWORD": ("Review", "WEBAPP_REVIEWER_USER", "reviewer"),
    "PROMETHEUS_PASSWORD": ("Prometheus", "PROMETHEUS_USER", "admin"),
}


def read_env_file(path: Path) -> dict[str, str]:
    """``NAME=value`` lines of an env file (comments and blank lines skipped; the last value wins);
    empty when the file does not exist."""
    values = {}
    if path.exists():
        for line in path.read_text().splitlines():
            if "=" in line and not line.lstrip().startswith("#"):
                name, value = line.split("=", 1)
                values[name.strip()] = value.strip()
    return values


def write_airflow_passwords(path: Path, user: str, password: str) -> None:
    """Airflow's simple auth manager's password file: ``{user: password}`` as JSON, readable by its
    owner only, replaced whole (never a half-written file the API server could read)."""
    if not password:
        raise ValueError("AIRFLOW_ADMIN_PASSWORD is empty: remove the empty line from .env to have one generated")
    write_private(path, json.dumps({user: password}))


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1].startswith("-"):
        raise SystemExit(__doc__)
    path = Path(sys.argv[1])
    wanted = {**SECRETS, **(COMPOSE if "--compose" in sys.argv[2:] else {})}
    have = read_env_file(path)
    # A value set in the environment wins over the file in every mode (compose and local-env.sh
    # alike), so generating one would only print a login that is not in effect.
    missing = [name for name in wanted if not have.get(name) and not os.environ.get(name)]
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.fchmod(fd, 0o600)  # also when the file existed (say, copied from .env.example)
    with open(fd, "a") as out:
        if not missing:
            return
        text = path.read_text()
        if text and not text.endswith("\n"):
            out.write("\n")
        generated = {name: wanted[name]() for name in missing}
        out.writelines(f"{name}={value}\n" for name, value in generated.items())
    logins = [(LOGINS[name], value) for name, value in generated.items() if name in LOGINS]
    if logins:
        print(f"Generated logins (kept in {path}, readable by you only):")
        for (service, user_variable, default), password in logins:
            user = os.environ.get(user_variable) or have.get(user_variable) or default
            print(f"  {service:8s} {user} / {password}")


if __name__ == "__main__":
    main()
