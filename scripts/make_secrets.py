"""Append the platform's secrets that FILE lacks (an env file); existing values are kept.

usage: make_secrets.py FILE [--compose]   (--compose adds AIRFLOW_UID and POSTGRES_PASSWORD for docker compose)
"""

from __future__ import annotations

import base64
import os
import secrets
import sys
from pathlib import Path

SECRETS = {
    "AIRFLOW__API_AUTH__JWT_SECRET": lambda: secrets.token_urlsafe(64),  # Airflow wants >= 64 bytes
    "AIRFLOW__API__SECRET_KEY": lambda: secrets.token_urlsafe(32),
    "AIRFLOW__CORE__FERNET_KEY": lambda: base64.urlsafe_b64encode(os.urandom(32)).decode(),
    "WEBAPP_SECRET_KEY": lambda: secrets.token_urlsafe(32),
}


def _airflow_uid() -> str:
    """The user the containers write data/ and storage/ as: yours, or Airflow's 50000 instead of root."""
    return str(os.getuid() or 50000)


COMPOSE = {
    "AIRFLOW_UID": _airflow_uid,
    "POSTGRES_PASSWORD": lambda: secrets.token_urlsafe(24),
}


def main() -> None:
    path = Path(sys.argv[1])
    wanted = {**SECRETS, **(COMPOSE if "--compose" in sys.argv[2:] else {})}
    text = path.read_text() if path.exists() else ""
    have = {line.split("=", 1)[0].strip() for line in text.splitlines() if "=" in line and not line.startswith("#")}
    missing = [name for name in wanted if name not in have]
    if not missing:
        return
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "a") as out:
        if text and not text.endswith("\n"):
            out.write("\n")
        out.writelines(f"{name}={wanted[name]()}\n" for name in missing)
    print(f"added {', '.join(missing)} to {path}")


if __name__ == "__main__":
    main()
