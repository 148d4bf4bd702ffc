"""The live compose layer: a real Docker engine builds the project's images and runs docker-compose.yml."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest

from fsdl_tools.compose import ROOT, ComposeError, ComposeProject, ensure_base_images, offline_settings


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
    project = ComposeProject(tmp_path_factory.mktemp("compose") / "fsdl", offline_settings()).create()
    try:
        yield project
    finally:
        print(f"\ncompose log: {project.log}")
        project.destroy()
