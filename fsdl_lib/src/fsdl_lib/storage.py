"""Where data lives: a folder, or a bucket of an S3-compatible object store, behind one seam.

A *location* is a path: a local one (``/srv/data``, ``file:///srv/data``), or a
:class:`~upath.UPath` for an object-store URL (``s3://fsdl-data/raw``) with the store's endpoint and
this service's credentials (``FSDL_S3_ENDPOINT_URL``, ``FSDL_S3_ACCESS_KEY_ID``,
``FSDL_S3_SECRET_ACCESS_KEY``). The object-store half needs the ``s3`` extra of ``fsdl-lib``
(universal-pathlib and s3fs); a platform on folders alone does not. Code that
reads and lists uses the path API on either (``/``, ``iterdir``, ``read_bytes``); the writes that must
never be seen half done go through this module, which does each the way its back-end allows:

* :func:`write_bytes`: readers see the old object or the new one. A folder writes a temporary file
  and renames it; an object store's single PUT is already all or nothing.
* :func:`create`: write only if nothing is there yet, in one step, so two writers racing for one name
  cannot both win. A folder links a finished temporary file to the name (``link`` fails when the name
  exists); an object store takes a conditional PUT (``If-None-Match: *``).
* :func:`files`: every file under a location, with its size, in one listing (one request per
  thousand keys on a store, not one per folder).

Errors of the store itself (down, the credentials refused, the bucket missing) become a
:class:`~fsdl_lib.exceptions.StorageError` that names the store and the setting to look at.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from fsdl_lib.atomic import atomic_write_bytes, fsync_dir
from fsdl_lib.exceptions import StorageError

OBJECT_STORE_PROTOCOLS = frozenset({"s3", "s3a"})
ENDPOINT_SETTING = "FSDL_S3_ENDPOINT_URL"
CREDENTIAL_SETTINGS = "FSDL_S3_ACCESS_KEY_ID and FSDL_S3_SECRET_ACCESS_KEY"


@dataclass(frozen=True)
class ObjectStore:
    """How to reach an S3-compatible store: its endpoint, and the credentials of this service."""

    endpoint_url: str = ""
    access_key_id: str = ""
    secret_access_key: str = ""
    region: str = "us-east-1"

    def options(self) -> dict[str, Any]:
        """fsspec's storage options for s3fs."""
        options: dict[str, Any] = {
            "client_kwargs": {"region_name": self.region},
            # One client per store and identity in a process (fsspec's instance cache), whose listings
            # are never cached: other services write too, so a listing is read fresh each time.
            "use_listings_cache": False,
        }
        if self.endpoint_url:
            options["client_kwargs"]["endpoint_url"] = self.endpoint_url
        if self.access_key_id or self.secret_access_key:
            options.update(key=self.access_key_id, secret=self.secret_access_key)
        # A store that does not answer is said within seconds, not after botocore's minutes of retries.
        options["config_kwargs"] = {"connect_timeout": 5, "read_timeout": 60, "retries": {"max_attempts": 2}}
        return options


def location(url: str | os.PathLike[str], store: ObjectStore | None = None) -> Path:
    """The location ``url`` names: a local path as it is, an object-store URL with ``store``'s
    endpoint and credentials."""
    text = os.fspath(url)
    protocol = text.split("://", 1)[0] if "://" in text else ""
    if protocol in OBJECT_STORE_PROTOCOLS:
        try:
            from upath import UPath
        except ImportError:
            raise StorageError(f"{text}: an object store needs fsdl-lib's s3 extra ('fsdl-lib[s3]')") from None
        return UPath(text, **(store or ObjectStore()).options())
    if protocol not in ("", "file", "local"):
        raise StorageError(f"{text}: unknown storage protocol {protocol!r}; use a folder or s3://bucket/prefix")
    return Path(text.split("://", 1)[1] if protocol else text)


def is_object_store(path: Path) -> bool:
    return getattr(path, "protocol", "") in OBJECT_STORE_PROTOCOLS


def describe(path: Path) -> str:
    """The store and place a message should name: the URL and, for an object store, its endpoint."""
    if not is_object_store(path):
        return str(path)
    endpoint = path.storage_options.get("client_kwargs", {}).get("endpoint_url", "the default endpoint")  # type: ignore[attr-defined]
    return f"{path} (on {endpoint})"


@contextlib.contextmanager
def storage_errors(path: Path, doing: str) -> Iterator[None]:
    """Turn the store's own failures into a :class:`StorageError` that says what to check.

    A missing key stays a :class:`FileNotFoundError` (the callers decide what absence means); the
    store being unreachable, refusing the credentials or lacking the bucket does not.
    """
    if not is_object_store(path):
        yield
        return
    try:
        yield
    except (FileNotFoundError, FileExistsError, IsADirectoryError, NotADirectoryError):
        if not _bucket_exists(path):
            raise StorageError(
                f"{doing} {describe(path)}: the bucket {_bucket(path)!r} does not exist; the platform's "
                f"set-up creates it (check {ENDPOINT_SETTING} and the URL)"
            ) from None
        raise
    except PermissionError as exc:
        raise StorageError(
            f"{doing} {describe(path)}: the store refused this service's credentials ({exc}); check "
            f"{CREDENTIAL_SETTINGS}"
        ) from None
    except OSError as exc:
        raise StorageError(
            f"{doing} {describe(path)} failed: {exc}; is the store up (check {ENDPOINT_SETTING})?"
        ) from None
    except Exception as exc:  # botocore's connection errors are not OSErrors
        if type(exc).__module__.split(".")[0] not in ("botocore", "aiobotocore", "aiohttp", "urllib3"):
            raise
        raise StorageError(
            f"{doing} {describe(path)}: the store does not answer ({type(exc).__name__}: {exc}); is it up, and "
            f"is {ENDPOINT_SETTING} right?"
        ) from None


def _bucket(path: Path) -> str:
    return str(path.path).split("/", 1)[0]  # type: ignore[attr-defined]


def _bucket_exists(path: Path) -> bool:
    try:
        return bool(path.fs.exists(_bucket(path)))  # type: ignore[attr-defined]
    except Exception:
        return True  # the store cannot say; the original error stands


def read_bytes(path: Path) -> bytes:
    with storage_errors(path, "reading"):
        return path.read_bytes()


def write_bytes(path: Path, data: bytes, *, durable: bool = True) -> None:
    """Write ``data`` at ``path`` whole: readers see the old content or the new, never a part."""
    if not is_object_store(path):
        atomic_write_bytes(Path(path), data, durable=durable)
        return
    with storage_errors(path, "writing"):
        path.fs.pipe_file(path.path, data)  # type: ignore[attr-defined]


def create(path: Path, data: bytes) -> bool:
    """Write ``data`` at ``path`` only if nothing is there; True if this call wrote it, False if
    something already was (its content left as it is). Two racing callers: exactly one gets True."""
    if is_object_store(path):
        with storage_errors(path, "creating"):
            try:
                path.fs.pipe_file(path.path, data, mode="create")  # type: ignore[attr-defined]
            except OSError as exc:
                if exc.errno == errno.EEXIST or "pre-condition" in str(exc) or "PreconditionFailed" in str(exc):
                    return False
                raise
        return True
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(tmp_name, target)
        except FileExistsError:
            return False
        fsync_dir(target.parent)
        return True
    finally:
        os.unlink(tmp_name)


def sha256s(root: Path, relatives: Sequence[str], *, batch: int = 32) -> dict[str, str]:
    """The sha256 of each object ``root/<relative>`` of an object store, read ``batch`` at a time: the
    store serves the requests of a batch at once, where one by one each would wait for the last."""
    found: dict[str, str] = {}
    for start in range(0, len(relatives), batch):
        chunk = relatives[start : start + batch]
        keys = {f"{root.path.rstrip('/')}/{relative}": relative for relative in chunk}  # type: ignore[attr-defined]
        with storage_errors(root, "reading"):
            contents = root.fs.cat(list(keys))  # type: ignore[attr-defined]
        found.update({keys[key]: hashlib.sha256(data).hexdigest() for key, data in contents.items()})
    return found


def delete(path: Path) -> None:
    """Remove the file at ``path``; nothing there is not an error."""
    with storage_errors(path, "deleting"), contextlib.suppress(FileNotFoundError):
        path.unlink()


@dataclass(frozen=True)
class StoredFile:
    """A file as a listing gives it: its size and, on an object store, its ETag (which changes
    whenever its content does; a folder has none)."""

    size: int
    etag: str | None = None


def files(root: Path) -> dict[str, StoredFile]:
    """Every file under ``root``, hidden ones (and those in hidden folders) left out: its POSIX path
    relative to ``root``, with its size and ETag. Nothing under it, or no ``root``, is an empty dict."""
    found: dict[str, StoredFile] = {}
    if not is_object_store(root):
        local = Path(root)
        for folder, dirs, names in os.walk(local):
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            for name in names:
                if not name.startswith("."):
                    file = Path(folder) / name
                    with contextlib.suppress(FileNotFoundError):
                        found[file.relative_to(local).as_posix()] = StoredFile(file.stat().st_size)
        return found
    with storage_errors(root, "listing"):
        prefix = root.path.rstrip("/")  # type: ignore[attr-defined]
        try:
            listing = root.fs.find(prefix, detail=True)  # type: ignore[attr-defined]
        except FileNotFoundError:
            return found
    for key, info in listing.items():
        relative = PurePosixPath(key).relative_to(prefix)
        if info.get("type") == "file" and not any(part.startswith(".") for part in relative.parts):
            found[relative.as_posix()] = StoredFile(int(info.get("size") or 0), str(info.get("ETag") or "") or None)
    return found
