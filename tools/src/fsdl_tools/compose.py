"""A copy of the repository run with `docker compose`, as a user runs it: the live compose tests and
the compose benchmark drive the platform's containers through this one class."""

from __future__ import annotations

import ipaddress
import json
import re
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from fsdl_tools.clients import free_port, wait_until
from fsdl_tools.repo import ROOT

OVERRIDE = ROOT / "tests" / "compose_live" / "compose.test.yml"
"""Added to docker-compose.yml in every run of this module: timings only (see the file)."""
STANDINS = "sudo tests/compose/images/build.sh"


class ComposeError(RuntimeError):
    pass


def repository_files(root: Path = ROOT) -> list[str]:
    """The files a clone of the repository has, plus new files not yet committed (not ignored ones)."""
    out = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=root, capture_output=True, check=True,
    )  # fmt: skip
    return [name for name in out.stdout.decode().split("\0") if name and (root / name).is_file()]


def base_images(root: Path = ROOT) -> set[str]:
    """Every image the compose file and the Dockerfiles start from (FROM lines and `image:` of services
    that have no build section)."""
    import yaml

    images = set()
    for dockerfile in root.glob("*/Dockerfile"):
        images |= set(re.findall(r"^FROM\s+(\S+)", dockerfile.read_text(), flags=re.MULTILINE))
    for service in yaml.safe_load((root / "docker-compose.yml").read_text())["services"].values():
        if "build" not in service and "image" in service:
            images.add(service["image"])
    return images


def docker(*args: str, check: bool = True, timeout: float | None = 120) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise ComposeError(f"docker {' '.join(args)} failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return result


STANDIN_LABEL = "org.fsdl.standin-recipe"
"""The label tests/compose/images/build.sh puts on each stand-in (the hash of its recipe)."""
STANDIN_BASE = "debian:bookworm-slim"
"""What the stand-ins themselves start from (no Dockerfile of the project does)."""


def is_standin(image: str) -> bool | None:
    """Whether a local image is one of our stand-ins; None when it is not present at all."""
    template = f'{{{{ if .Config.Labels }}}}{{{{ index .Config.Labels "{STANDIN_LABEL}" }}}}{{{{ end }}}}'
    result = docker("image", "inspect", "-f", template, image, check=False)
    if result.returncode != 0:
        return None
    return result.stdout.strip() not in ("", "<no value>")


def missing_base_images(pull_timeout: float = 300) -> list[str]:
    """Base images neither present nor pullable; empty when the build can start."""
    missing = []
    for image in sorted(base_images()):
        if is_standin(image) is not None:
            continue
        if docker("pull", image, check=False, timeout=pull_timeout).returncode != 0:
            missing.append(image)
    return missing


def ensure_base_images() -> list[str]:
    """Make every base image available, as `make test` needs them: an official image that is present
    or pullable is used as it is; for any other, a local stand-in is built (or, built before, brought
    up to date) by tests/compose/images/build.sh, as root. Returns the stand-ins it asked for."""
    standins = [image for image in sorted(base_images() | {STANDIN_BASE}) if is_standin(image)]
    wanted = sorted(set(standins) | set(missing_base_images()))
    if not wanted:
        return []
    script = ROOT / "tests" / "compose" / "images" / "build.sh"
    as_root = ROOT / "scripts" / "as-root.sh"
    command = ["bash", "-c", f'. "{as_root}" && as_root "$@"', "as_root", str(script), *wanted]
    print(f"Base images from local stand-ins (no registry has them here): {', '.join(wanted)}", flush=True)
    if subprocess.run(command).returncode != 0:
        raise ComposeError(
            f"the stand-ins of {', '.join(wanted)} could not be built (it needs root and a Docker engine); "
            f"run: {STANDINS} {' '.join(wanted)}"
        )
    return wanted


def main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m fsdl_tools.compose", description=__doc__)
    parser.add_argument("command", choices=["base-images"], help="base-images: what `make test` runs first")
    parser.parse_args(argv)
    try:
        ensure_base_images()
    except ComposeError as exc:
        sys.exit(str(exc))


def torch_index_url(timeout: float = 15) -> str | None:
    """The wheel index the image builds should take torch from: TORCH_INDEX_URL when the environment
    sets it (even empty), else the Dockerfiles' default (PyTorch's CPU wheels) when it answers, else
    "" (pip's own index). None leaves the Dockerfiles' default in place."""
    import os
    import urllib.request

    if "TORCH_INDEX_URL" in os.environ:
        return os.environ["TORCH_INDEX_URL"]
    found = re.search(r"^ARG TORCH_INDEX_URL=(\S+)", (ROOT / "airflow" / "Dockerfile").read_text(), re.MULTILINE)
    if found is None:
        return None
    try:
        with urllib.request.urlopen(f"{found.group(1).rstrip('/')}/torch/", timeout=timeout):
            return None
    except OSError as exc:
        print(f"PyTorch's CPU wheel index does not answer ({exc}); the images take torch from pip's own index")
        return ""


def offline_settings() -> dict[str, str]:
    """What the live compose tests and the compose benchmark add to `.env`: random weights (no
    download, as in every other layer) and the wheel index for torch (:func:`torch_index_url`)."""
    settings = {"FSDL_OFFLINE_WEIGHTS": "1", "FSDL_BAKE_WEIGHTS": "0", "WEBAPP_MODEL_POLL_SECONDS": "2"}
    index = torch_index_url()
    if index is not None:
        settings["TORCH_INDEX_URL"] = index
    return settings


TEST_PROJECT_PREFIX = "fsdltest"
"""Compose project names of the tests (and only theirs): stale ones are removed by name."""


class ComposeProject:
    """The repository's files copied to ``workdir`` with a `.env` of their own, run as one compose project.

    ``settings`` go into `.env` after what `make secrets` writes (ports are picked free unless given).
    """

    def __init__(
        self,
        workdir: Path,
        settings: dict[str, str] | None = None,
        *,
        name: str | None = None,
        files: tuple[str, ...] = ("docker-compose.yml", OVERRIDE.name),
    ) -> None:
        self.dir = workdir
        self.name = name or f"{TEST_PROJECT_PREFIX}{secrets.token_hex(3)}"
        self.settings = settings or {}
        self.files = files
        self.log = workdir.parent / f"{self.name}.log"

    # --- set-up -------------------------------------------------------------------------------
    def copy(self) -> ComposeProject:
        """The repository's files (and the tests' override) in the project's folder."""
        self.dir.mkdir(parents=True, exist_ok=True)
        for name in repository_files():
            target = self.dir / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, target)
        shutil.copy(OVERRIDE, self.dir / OVERRIDE.name)
        return self

    def create(self) -> ComposeProject:
        self.copy()
        shutil.copy(self.dir / ".env.example", self.dir / ".env")
        subprocess.run(
            [sys.executable, "-m", "fsdl_deploy.secrets", ".env", "--compose"], cwd=self.dir, check=True,
            capture_output=True,
        )  # fmt: skip
        published = ("AIRFLOW_PORT", "MLFLOW_PORT", "WEBAPP_PORT", "FLOWER_PORT", "PROMETHEUS_PORT", "OBJECTSTORE_PORT")
        ports = {name: str(free_port()) for name in published}
        with (self.dir / ".env").open("a") as env:
            env.write("\n# --- the live compose test ---\n")
            env.writelines(f"{k}={v}\n" for k, v in {**ports, **self.settings}.items())
        return self

    def worker_host(
        self, workdir: Path, address: str, hostname: str, *, overrides: tuple[str, ...] = ()
    ) -> ComposeProject:
        """A second project from ``docker-compose.worker.yml`` (and ``overrides``, files of the repository),
        standing in for a worker host: its `.env` is what `make worker-env` writes from this project's,
        with this project at ``address``."""
        files = ("docker-compose.worker.yml", *overrides)
        worker = ComposeProject(workdir, name=f"{self.name}{hostname}", files=files).copy()
        subprocess.run(
            [sys.executable, "-m", "fsdl_deploy.workers", str(self.dir / ".env"), str(worker.dir / ".env"),
             "--address", address, "--hostname", hostname],
            cwd=worker.dir, check=True, capture_output=True,
        )  # fmt: skip
        return worker

    @staticmethod
    def bridge_gateway() -> str:
        """The host's address on Docker's default bridge: every container reaches the ports published
        on it, and nothing outside this machine does."""
        (config,) = json.loads(docker("network", "inspect", "bridge", "-f", "{{json .IPAM.Config}}").stdout)[:1]
        # Docker leaves Gateway out where it took the default, the subnet's first address.
        return str(config.get("Gateway") or next(ipaddress.ip_network(config["Subnet"]).hosts()))

    @property
    def env(self) -> dict[str, str]:
        """The project's `.env` (the last value of a name wins, as in compose)."""
        values = {}
        for line in (self.dir / ".env").read_text().splitlines():
            if "=" in line and not line.lstrip().startswith("#"):
                name, value = line.split("=", 1)
                values[name.strip()] = value
        return values

    def url(self, port_variable: str) -> str:
        return f"http://127.0.0.1:{self.env[port_variable]}"

    def store_location(self, url: str, identity: str = "admin") -> Path:
        """``url`` (s3://...) on the project's object store (its published S3 port), as ``identity``."""
        from fsdl_deploy.objectstore import location_as

        return location_as(identity, url, self.url("OBJECTSTORE_PORT"), self.env)

    # --- compose ------------------------------------------------------------------------------
    def compose(self, *args: str, timeout: float = 900, check: bool = True) -> subprocess.CompletedProcess[str]:
        files = [argument for name in self.files for argument in ("-f", name)]
        command = ["docker", "compose", "-p", self.name, *files, *args]
        start = time.monotonic()
        result = subprocess.run(command, cwd=self.dir, capture_output=True, text=True, timeout=timeout)
        with self.log.open("a") as log:
            log.write(f"$ {' '.join(command[2:])}  ({time.monotonic() - start:.1f} s, exit {result.returncode})\n")
            log.write(result.stdout[-20000:] + result.stderr[-20000:] + "\n")
        if check and result.returncode != 0:
            raise ComposeError(
                f"docker compose {' '.join(args)} failed ({result.returncode}):\n{result.stderr[-4000:]}\n{self.logs()}"
            )
        return result

    def timed(self, *args: str, timeout: float = 900) -> float:
        start = time.monotonic()
        self.compose(*args, timeout=timeout)
        return time.monotonic() - start

    def ps(self) -> dict[str, dict[str, Any]]:
        """Every container of the project (running or not) by service name."""
        out = self.compose("ps", "--all", "--format", "json").stdout
        rows = [json.loads(line) for line in out.splitlines() if line.strip()]
        return {row["Service"]: row for row in rows}

    def wait_healthy(self, timeout: float = 300) -> None:
        """Wait until every running container with a healthcheck reports healthy."""
        waiting: dict[str, str] = {}

        def healthy() -> bool:
            nonlocal waiting
            waiting = {
                service: row["Status"]
                for service, row in self.ps().items()
                if row["State"] == "running" and row.get("Health") not in ("", "healthy")
            }
            return not waiting

        try:
            wait_until(healthy, timeout, "every container healthy", interval=2)
        except TimeoutError:
            raise ComposeError(f"not healthy after {timeout} s: {waiting}\n{self.logs(waiting)}") from None

    def state(self, service: str) -> str:
        return docker("inspect", "-f", "{{.State.Status}}", self.container(service)).stdout.strip()

    def container(self, service: str) -> str:
        return self.compose("ps", "--all", "-q", service).stdout.strip()

    def hostname(self, service: str) -> str:
        return docker("inspect", "-f", "{{.Config.Hostname}}", self.container(service)).stdout.strip()

    def exit_code(self, service: str) -> int:
        return int(docker("inspect", "-f", "{{.State.ExitCode}}", self.container(service)).stdout.strip())

    def logs(self, services: Iterable[str] = (), tail: int = 60) -> str:
        result = self.compose("logs", "--no-color", "--tail", str(tail), *services, check=False, timeout=120)
        return result.stdout[-12000:]

    def memory(self) -> dict[str, float]:
        """Resident memory of each running container in MiB (`docker stats`)."""
        ids = {row["ID"][:12]: service for service, row in self.ps().items() if row["State"] == "running"}
        out = docker("stats", "--no-stream", "--format", "{{json .}}", *ids).stdout
        usage = {}
        for line in out.splitlines():
            row = json.loads(line)
            amount = row["MemUsage"].split("/")[0].strip()
            number, unit = re.fullmatch(r"([\d.]+)\s*([KMG]i?B|B)", amount).groups()
            scale = {"B": 1 / 2**20, "KiB": 1 / 1024, "kB": 1 / 1024, "MiB": 1, "MB": 1, "GiB": 1024, "GB": 1024}
            usage[ids.get(row["ID"][:12], row["Name"])] = float(number) * scale[unit]
        return usage

    @staticmethod
    def remove_stale_test_projects() -> list[str]:
        """Remove what earlier test runs killed before their clean-up left in the engine: their
        containers (``restart: always`` brings them back with the engine), volumes and networks.
        Only names with the test prefix are touched; returns the projects removed."""

        def names(*command: str) -> list[str]:
            out = subprocess.run(["docker", *command], capture_output=True, text=True, check=True).stdout
            return [line for line in out.split() if line.startswith(TEST_PROJECT_PREFIX)]

        containers = names("ps", "--all", "--format", "{{.Names}}")
        volumes = names("volume", "ls", "--quiet")
        networks = names("network", "ls", "--format", "{{.Name}}")
        for kind, found in (("container", containers), ("volume", volumes), ("network", networks)):
            if found:
                subprocess.run(["docker", kind, "rm", "--force", *found], capture_output=True, check=False)
        return sorted({name.split("-")[0].split("_")[0] for name in containers + volumes + networks})

    def destroy(self) -> None:
        """Stop and remove the containers, network and volumes, then the copy (the containers wrote
        its files as AIRFLOW_UID: this user, or 50000 when the tests run as root)."""
        if self.dir.exists():
            self.compose("down", "--volumes", "--remove-orphans", "--timeout", "20", check=False, timeout=300)
            shutil.rmtree(self.dir, ignore_errors=True)


if __name__ == "__main__":
    main()
