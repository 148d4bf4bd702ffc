"""Celery workers on other hosts: what the first host prepares for them, and what one checks on start.

A worker host runs ``docker-compose.worker.yml``: one Celery worker that mounts nothing and reaches the
first host's published ports only (README, "Adding a worker host"). It holds the least it needs:

- the Redis password (the broker), and a Postgres role of its own that owns one database, the Celery
  results (:func:`prepare_results_database`), never the Airflow metadata database;
- the workers' object-store identity and the DAGs' MLflow account;
- none of the first host's other secrets (Airflow's Fernet key, the metadata database's password, the
  store's admin keys, any login a person uses).

DAG code travels baked into the image, with a version check: the first host publishes the fingerprint
of its DAG folder and of ``fsdl_lib`` to the data bucket at start-up (:func:`publish_fingerprint`), and a
worker host whose image holds other code refuses to start, saying so (:func:`check_fingerprint`). A
versioned DAG bundle (``GitDagBundle``) would need the repository reachable from every host, and would
version the DAG files only, not ``fsdl_lib``, which the tasks run and which the image installs.

usage: python -m fsdl_deploy.workers ENV_FILE OUT_FILE --address ADDRESS [--hostname NAME]   (make worker-env)

writes OUT_FILE, the worker host's ``.env`` (0600): its address of the first host, its name, and what
``docker-compose.worker.yml`` refers to that ENV_FILE sets. The standard library only: like ``make
secrets``, it runs before any venv exists.
"""

from __future__ import annotations

import argparse
import hashlib
import ipaddress
import json
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final
from urllib.parse import unquote, urlsplit

from fsdl_deploy.files import referenced_variables, write_private

RESULTS_DATABASE: Final = "celery_results"
RESULTS_ROLE: Final = "celery"

FINGERPRINT_KEY: Final = "platform/code-fingerprint.json"
"""Under the data location (FSDL_DATA_URL): what the first host's DAGs and ``fsdl_lib`` hash to."""


@dataclass(frozen=True)
class Fingerprint:
    """What a host would run: a sha256 over its DAG files and ``fsdl_lib``'s sources."""

    sha256: str
    files: int

    def to_json(self) -> str:
        return json.dumps({"sha256": self.sha256, "files": self.files})


def _sources(folder: Path) -> Iterable[Path]:
    return (path for path in sorted(folder.rglob("*.py")) if "__pycache__" not in path.parts)


def fingerprint(dags: Path) -> Fingerprint:
    """The fingerprint of ``dags`` (every ``.py`` file below it) and of the installed ``fsdl_lib``."""
    import fsdl_lib

    digest = hashlib.sha256()
    count = 0
    for label, folder in (("dags", dags), ("fsdl_lib", Path(fsdl_lib.__file__).parent)):
        if not folder.is_dir():
            raise FileNotFoundError(f"no DAG folder at {folder} (AIRFLOW__CORE__DAGS_FOLDER)")
        for path in _sources(folder):
            digest.update(f"{label}/{path.relative_to(folder).as_posix()}\0".encode())
            digest.update(hashlib.sha256(path.read_bytes()).digest())
            count += 1
    return Fingerprint(digest.hexdigest(), count)


def publish_fingerprint(data_root: Path, dags: Path) -> Fingerprint:
    """Write this host's fingerprint under ``data_root``, for worker hosts to check theirs against."""
    from fsdl_lib import storage

    mine = fingerprint(dags)
    with storage.storage_errors(data_root, "publishing the code fingerprint"):
        storage.write_bytes(data_root / FINGERPRINT_KEY, mine.to_json().encode())
    return mine


class CodeMismatchError(RuntimeError):
    """This worker host's DAGs or ``fsdl_lib`` differ from the first host's."""


def check_fingerprint(data_root: Path, dags: Path) -> Fingerprint:
    """This host's fingerprint, if it is the one the first host published; else :class:`CodeMismatchError`."""
    from fsdl_lib import storage

    mine = fingerprint(dags)
    path = data_root / FINGERPRINT_KEY
    with storage.storage_errors(data_root, "reading the first host's code fingerprint"):
        if not storage.exists(path):
            raise CodeMismatchError(
                f"the first host has published no code fingerprint at {storage.describe(path)}: start it "
                "(its airflow-init writes one) before a worker host"
            )
        theirs = json.loads(storage.read_bytes(path))
    if theirs.get("sha256") != mine.sha256:
        raise CodeMismatchError(
            f"this worker's DAGs and fsdl_lib (sha256 {mine.sha256[:12]}, {mine.files} files) are not the first "
            f"host's ({str(theirs.get('sha256'))[:12]}, {theirs.get('files')} files): check out the first "
            "host's commit here and rebuild the image (docker compose -f docker-compose.worker.yml build), "
            "then start it again"
        )
    return mine


def _results_target(result_backend: str) -> tuple[str, str, str]:
    """(role, password, database) of a Celery database result backend URL (``db+postgresql://...``)."""
    parts = urlsplit(result_backend.removeprefix("db+"))
    role, password, database = unquote(parts.username or ""), unquote(parts.password or ""), parts.path.lstrip("/")
    if not (role and password and database) or parts.scheme not in ("postgresql", "postgresql+psycopg2"):
        raise ValueError(
            "AIRFLOW__CELERY__RESULT_BACKEND is not db+postgresql://ROLE:PASSWORD@HOST/DATABASE: no results "
            "database to prepare"
        )
    return role, password, database


def prepare_results_database(admin_url: str, result_backend: str) -> bool:
    """Make the result backend's role (its password set to the URL's, so that rotating it works) and its
    database, owned by it; close the metadata database to every role but its owner. Idempotent; returns
    whether the database was created. ``admin_url`` is the metadata database's (a superuser's) URL."""
    import psycopg2
    from psycopg2 import sql

    role, password, database = _results_target(result_backend)
    admin = urlsplit(admin_url.replace("+psycopg2", ""))
    connection = psycopg2.connect(admin.geturl())
    connection.autocommit = True  # CREATE DATABASE cannot run in a transaction
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,))
            verb = "ALTER" if cursor.fetchone() else "CREATE"
            cursor.execute(
                sql.SQL(verb + " ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD %s").format(
                    sql.Identifier(role)
                ),
                (password,),
            )
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,))
            created = cursor.fetchone() is None
            if created:
                cursor.execute(
                    sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(database), sql.Identifier(role))
                )
            metadata = admin.path.lstrip("/")
            cursor.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(sql.Identifier(metadata)))
            cursor.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(sql.Identifier(database)))
    finally:
        connection.close()
    return created


def worker_env(values: Mapping[str, str], names: Iterable[str], **chosen: str) -> str:
    """The env file of a worker host: the values of ``names`` that ``values`` (the first host's ``.env``)
    sets, then ``chosen`` (its address, its host name); nothing else of the first host's."""
    lines = [
        "# A worker host's settings and secrets, written by `make worker-env` on the first host.",
        "# Copy it to the worker host as .env (readable by its owner only), next to docker-compose.worker.yml.",
    ]
    lines += [f"{name}={values[name]}" for name in sorted(names) if name in values and name not in chosen]
    lines += [f"{name}={value}" for name, value in chosen.items()]
    return "\n".join(lines) + "\n"


WORKER_FILE: Final = "docker-compose.worker.yml"


def write_worker_env(env_file: Path, out: Path, address: str, hostname: str, root: Path) -> list[str]:
    """Write a worker host's env file (:func:`worker_env`); returns the names it took from ``env_file``."""
    from fsdl_deploy.secrets import read_env_file

    try:
        ipaddress.ip_address(address)
    except ValueError:
        raise ValueError(
            f"--address {address!r} is not an IP address: give the address the worker host reaches this one at "
            "(docker compose maps the services' names to it, which takes an address, not a host name)"
        ) from None
    values = read_env_file(env_file)
    names = referenced_variables((root / WORKER_FILE).read_text())
    secret = ("PASSWORD", "SECRET_KEY", "ACCESS_KEY")
    missing = sorted(name for name in names if name.endswith(secret) and name not in values)
    if missing:
        raise ValueError(f"{env_file} lacks {', '.join(missing)}: run `make secrets` first")
    write_private(out, worker_env(values, names, FSDL_PRIMARY_ADDRESS=address, FSDL_WORKER_HOSTNAME=hostname))
    return sorted(name for name in names if name in values)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fsdl_deploy.workers", description=__doc__.split("\n\n")[0])
    parser.add_argument("env_file", type=Path, help="the first host's .env")
    parser.add_argument("out", type=Path, help="the worker host's env file to write")
    parser.add_argument("--address", required=True, help="the first host's IP address, as the worker host reaches it")
    parser.add_argument(
        "--hostname", default="fsdl-worker-2", help="the worker's host name in Airflow (default fsdl-worker-2)"
    )
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="the repository (default: here)")
    args = parser.parse_args(argv)
    try:
        taken = write_worker_env(args.env_file, args.out, args.address, args.hostname, args.root)
    except (ValueError, FileNotFoundError) as exc:
        print(f"worker-env: {exc}", file=sys.stderr)
        return 2
    print(
        f"wrote {args.out} (readable by you only): {len(taken)} settings and secrets of {args.env_file}, the "
        f"first host at {args.address}, the worker named {args.hostname}. Copy it to the worker host as .env."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
