"""Keeping torch out of processes that never run it: serving, and the child that tries a model.

torch is installed wherever training runs, and it is imported by code that merely looks for it:
skops builds its list of trusted types by importing every module of scikit-learn, and
:func:`pkgutil.walk_packages` imports scikit-learn's vendored ``array_api_compat.torch`` on the way,
which imports torch: seconds, and hundreds of MiB in every serving worker. :func:`refuse_torch`
installs an import hook that makes torch look absent, as it is in the web app's image; code that
looks for it carries on without it.
"""

from __future__ import annotations

import sys


class NoTorch:
    """An import hook (a :data:`sys.meta_path` finder) refusing torch and its extensions."""

    @staticmethod
    def find_spec(name: str, path: object = None, target: object = None) -> None:
        if name.partition(".")[0] in {"torch", "torchvision"}:
            raise ModuleNotFoundError(f"{name} is not loaded by this process (it serves without torch)", name=name)


def refuse_torch() -> bool:
    """Make torch unimportable in this process from now on; False (and nothing done) where torch
    is loaded already."""
    if "torch" in sys.modules:
        return False
    if NoTorch not in sys.meta_path:
        sys.meta_path.insert(0, NoTorch)  # type: ignore[arg-type]
    return True
