"""Logins of the MLflow server: write the configuration of its basic-auth app and create or update
the platform's accounts in its user store. Idempotent; run before every start of
`mlflow server --app-name basic-auth` (the MLflow image's entrypoint, scripts/up.sh and the tests do).

usage: python mlflow/accounts.py MLFLOW_DIR

Writes MLFLOW_DIR/basic_auth.ini (0600; point MLFLOW_AUTH_CONFIG_PATH at it) and keeps the user
store in MLFLOW_DIR/basic_auth.db, beside the tracking database. Accounts, passwords from the
environment (`make secrets` and scripts/local-env.sh generate them):

  MLFLOW_AUTH_ADMIN_USERNAME (admin)  MLFLOW_AUTH_ADMIN_PASSWORD  people who promote: may do anything
  fsdl-pipelines                      MLFLOW_PIPELINES_PASSWORD   the DAGs: create experiments, runs
                                                                  and versions, set aliases on the
                                                                  models they registered
  fsdl-webapp                         WEBAPP_MLFLOW_PASSWORD      the web app: reads only

Every account may read everything (default permission READ); nobody can do anything anonymously.
Passwords are set from the environment at every run, so changing one in .env and restarting
rotates it. Only MLflow is imported: the MLflow image runs this without the platform's library.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

PIPELINES_USER = "fsdl-pipelines"
WEBAPP_USER = "fsdl-webapp"


def accounts() -> list[tuple[str, str, bool]]:
    """(user, password variable, is admin) of every account."""
    admin = os.environ.get("MLFLOW_AUTH_ADMIN_USERNAME") or "admin"
    return [
        (admin, "MLFLOW_AUTH_ADMIN_PASSWORD", True),
        (PIPELINES_USER, "MLFLOW_PIPELINES_PASSWORD", False),
        (WEBAPP_USER, "WEBAPP_MLFLOW_PASSWORD", False),
    ]


def write_config(mlflow_dir: Path) -> Path:
    admin = os.environ.get("MLFLOW_AUTH_ADMIN_USERNAME") or "admin"
    config = mlflow_dir / "basic_auth.ini"
    text = (
        "# Written by mlflow/accounts.py at every start; edit that script, not this file.\n"
        "[mlflow]\n"
        "default_permission = READ\n"
        f"database_uri = sqlite:///{(mlflow_dir / 'basic_auth.db').absolute()}\n"
        f"admin_username = {admin}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
        # Each request's password is checked with PBKDF2 (a CPU-bound hash): without the cache, a
        # training run's hundreds of logging calls doubled its time on two cores. One worker
        # serves, and passwords change only at a restart (this script), so nothing goes stale.
        "auth_cache_ttl_seconds = 600\n"
    )
    partial = config.with_name(f".{config.name}.partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with open(fd, "w") as out:
        out.write(text)
    partial.replace(config)
    return config


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    mlflow_dir = Path(sys.argv[1])
    missing = [variable for _, variable, _ in accounts() if not os.environ.get(variable)]
    if missing:
        print(
            f"accounts.py: {', '.join(missing)} not set; `make secrets` (containers) or scripts/local-env.sh "
            "(local modes) generates them",
            file=sys.stderr,
        )
        return 2
    mlflow_dir.mkdir(parents=True, exist_ok=True)
    config = write_config(mlflow_dir)

    from mlflow.server.auth.sqlalchemy_store import SqlAlchemyStore

    database = mlflow_dir / "basic_auth.db"
    store = SqlAlchemyStore()
    store.init_db(f"sqlite:///{database.absolute()}")
    database.chmod(0o600)  # password hashes
    for user, variable, is_admin in accounts():
        password = os.environ[variable]
        if store.has_user(user):
            store.update_user(user, password=password, is_admin=is_admin)
        else:
            store.create_user(user, password, is_admin=is_admin)
    names = ", ".join(user for user, _, _ in accounts())
    print(f"MLflow logins ready ({names}); configuration {config}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
