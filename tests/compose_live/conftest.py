"""The live compose layer: a real Docker engine builds the project's images and runs docker-compose.yml."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest

from fsdl_tools.clients import free_port
from fsdl_tools.compose import OVERRIDE, ROOT, ComposeError, ComposeProject, ensure_base_images, offline_settings

COMPUTE_QUEUE = "compute"


@pytest.fixture(scope="package")
def project(tmp_path_factory) -> Iterator[ComposeProject]:
    engine = subprocess.run([str(ROOT / "scripts" / "docker-engine.sh"), "ensure"], capture_output=True, text=True)
    if engine.returncode != 0:
        pytest.fail(f"no Docker engine for the live compose tests:\n{engine.stderr}", pytrace=False)
    stale = ComposeProject.remove_stale_test_projects()
    if stale:
        print(f"\nremoved what killed test runs left in the engine: {', '.join(stale)}")
    try:
        ensure_base_images()  # make test has done it; a run of this layer alone does it here
    except ComposeError as exc:
        pytest.fail(str(exc), pytrace=False)
    # Opened to worker hosts (test_worker_host.py) on Docker's bridge address, with the compute tasks on
    # a queue of their own, which this host's worker takes too.
    gateway = ComposeProject.bridge_gateway()
    settings = {
        **offline_settings(),
        "WORKERS_BIND_HOST": gateway,
        "REDIS_PORT": str(free_port()),
        "POSTGRES_PORT": str(free_port()),
        "FSDL_COMPUTE_QUEUE": COMPUTE_QUEUE,
        "FSDL_WORKER_QUEUES": f"default,{COMPUTE_QUEUE}",
    }
    files = ("docker-compose.yml", "docker-compose.primary.yml", OVERRIDE.name)
    project = ComposeProject(tmp_path_factory.mktemp("compose") / "fsdl", settings, files=files).create()
    try:
        yield project
    finally:
        print(f"\ncompose log: {project.log}")
        project.destroy()
