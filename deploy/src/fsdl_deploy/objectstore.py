"""The object store's buckets, and what each service's identity may do in them.

Declared once here, and written as SeaweedFS's S3 identity file (``weed server -s3.config``):

* ``fsdl-data``: the training data (raw photos, features, manifests, merged feedback). The workers read
  and write it; the web app can read none of it.
* ``fsdl-uploads``: what the web app keeps (uploads waiting for an answer, accepted answers waiting
  for the sync). The web app reads and writes it; the workers read it to merge accepted answers.
* ``fsdl-logs``: Airflow's task logs, written by the workers and read by the API server.

The admin identity alone administers the store (buckets, any object). The standard library only,
as the rest of this package's secrets code.
"""

from __future__ import annotations

import json
from typing import Final

BUCKETS: Final = {"data": "fsdl-data", "uploads": "fsdl-uploads", "logs": "fsdl-logs"}
"""Each bucket's role and name."""

ACCESS: Final[dict[str, dict[str, tuple[str, ...]]]] = {
    "workers": {"data": ("Read", "List", "Write"), "uploads": ("Read", "List"), "logs": ("Read", "List", "Write")},
    "webapp": {"uploads": ("Read", "List", "Write")},
}
"""What each service identity may do, bucket by bucket (SeaweedFS's actions); anything else is refused."""
ADMIN_ACTIONS: Final = ("Admin", "Read", "List", "Tagging", "Write")


def identity_config(credentials: dict[str, tuple[str, str]]) -> str:
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
    return json.dumps({"identities": identities}, indent=2)


PORT_FLAGS: Final = (
    "master.port", "master.port.grpc", "volume.port", "volume.port.grpc", "filer.port", "filer.port.grpc",
    "s3.port", "s3.port.grpc",
)  # fmt: skip
"""The ports a single-process SeaweedFS (``weed server``) listens on; all of them are chosen, so that
two stores (a test's, a platform's) never meet on a default."""


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
