"""The live compose layer: a real Docker engine builds the project's images and runs docker-compose.yml."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator

import pytest

from fsdl_tools.compose import ROOT, STANDINS, ComposeProject, missing_base_images


def test_settings() -> dict[str, str]:
    """What the test adds to `.env`: random weights (no download, as in every other layer) and, when the
    environment sets TORCH_INDEX_URL (even empty: pip's own index), that wheel index for torch."""
    settings = {"FSDL_OFFLINE_WEIGHTS": "1", "FSDL_BAKE_WEIGHTS": "0", "WEBAPP_MODEL_POLL_SECONDS": "2"}
    if "TORCH_INDEX_URL" in os.environ:
        settings["TORCH_INDEX_URL"] = os.environ["TORCH_INDEX_URL"]
    return settings


@pytest.fixture(scope="package")
def project(tmp_path_factory) -> Iterator[ComposeProject]:
    engine = subprocess.run([str(ROOT / "scripts" / "docker-engine.sh"), "ensure"], capture_output=True, text=True)
    if engine.returncode != 0:
        pytest.fail(f"no Docker engine for the live compose tests:\n{engine.stderr}", pytrace=False)
    stale = ComposeProject.remove_stale_test_projects()
    if stale:
        print(f"\nremoved what killed test runs left in the engine: {', '.join(stale)}")
    missing = missing_base_images()
    if missing:
        pytest.fail(
            f"base images {missing} are neither present nor pullable. Without access to an image registry, "
            f"build local stand-ins first: {STANDINS}",
            pytrace=False,
        )
    project = ComposeProject(tmp_path_factory.mktemp("compose") / "fsdl", test_settings()).create()
    try:
        yield project
    finally:
        print(f"\ncompose log: {project.log}")
        project.destroy()
