"""Files of the deployment that hold secrets (password files, the object store's identities and key):
the standard library only, as ``make secrets`` runs before any venv exists."""

from __future__ import annotations

import os
import re
from pathlib import Path


def write_private(path: Path, text: str) -> None:
    """``text`` at ``path``, readable by its owner only, replaced whole (never half a file to read)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as out:
        out.write(text)
    os.replace(tmp, path)


def referenced_variables(text: str) -> set[str]:
    """The ``.env`` variables a compose file refers to (``$${...}`` is a container's shell's)."""
    return set(re.findall(r"(?<!\$)\$\{([A-Z][A-Z0-9_]*)", text))
