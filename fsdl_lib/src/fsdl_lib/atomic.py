"""Atomic file writes: readers see the old file or the new one, never a partial one."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO


@contextlib.contextmanager
def atomic_writer(path: Path, *, durable: bool = True, replace: bool = True) -> Iterator[BinaryIO]:
    """Open a temporary file beside ``path``; on success it is synced and renamed over ``path``.

    On an exception the temporary file is removed and ``path`` is left as it was. With
    ``durable=False`` nothing is synced: readers still see the whole file or none, but a crash of
    the machine may lose it (:func:`make_durable` syncs it later). With ``replace=False`` the
    finished file is linked to ``path`` instead, which raises :class:`FileExistsError` when something
    is already there: of writers racing for one name, exactly one wins.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        if replace:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)
            tmp.unlink()
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if durable:
        fsync_dir(path.parent)


def atomic_write_bytes(path: Path, data: bytes, *, durable: bool = True, replace: bool = True) -> None:
    with atomic_writer(path, durable=durable, replace=replace) as handle:
        handle.write(data)


def make_durable(path: Path) -> None:
    """Sync a file written with ``durable=False``, and its name. Raises FileNotFoundError if it is gone."""
    _fsync(path)
    fsync_dir(path.parent)


def fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable."""
    _fsync(folder)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
