"""Keeping training's heavy libraries out of processes that never use them: serving, and the child
that tries a model.

torch and pyarrow are installed wherever training runs, and they are imported by code that merely
looks for them. skops builds its list of trusted types by importing every module of scikit-learn,
and :func:`pkgutil.walk_packages` imports scikit-learn's vendored ``array_api_compat.torch`` on the
way, which imports torch: seconds, and hundreds of MiB in every serving worker. pandas, which
scikit-learn and MLflow's client import, imports pyarrow where it is installed: 60 MiB more.
:func:`refuse_training_imports` installs an import hook that makes them look absent, as they are in
the web app's image; code that looks for them carries on without them.
"""

from __future__ import annotations

import sys
from typing import Final

REFUSED: Final = frozenset({"torch", "torchvision", "pyarrow"})


class RefuseTrainingImports:
    """An import hook (a :data:`sys.meta_path` finder) refusing :data:`REFUSED` and their submodules."""

    @staticmethod
    def find_spec(name: str, path: object = None, target: object = None) -> None:
        if name.partition(".")[0] in REFUSED:
            raise ModuleNotFoundError(f"{name} is not loaded by this process (it serves without it)", name=name)


def refuse_training_imports() -> bool:
    """Make :data:`REFUSED` unimportable in this process from now on; False (and nothing done) where
    one of them is loaded already."""
    if REFUSED & set(sys.modules):
        return False
    if RefuseTrainingImports not in sys.meta_path:
        sys.meta_path.insert(0, RefuseTrainingImports)  # type: ignore[arg-type]
    return True
