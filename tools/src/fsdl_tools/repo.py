"""The checkout these tools drive: the repository that holds this package (installed editable)."""

from __future__ import annotations

from pathlib import Path


def _find_root() -> Path:
    for folder in Path(__file__).resolve().parents:
        if (folder / "docker-compose.yml").is_file() and (folder / "Procfile").is_file():
            return folder
    raise RuntimeError(f"{__file__} is not inside a checkout of the platform (install fsdl-tools editable)")


ROOT = _find_root()
