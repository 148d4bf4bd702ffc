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
  thousand keys on a store, not one per folder); :func:`read_many` reads many files at once.
* :func:`locked`: one holder at a time (a file lock on a folder, a lease object on a store).

Errors of the store itself (down, the credentials refused, the bucket missing) become a
:class:`~fsdl_lib.exceptions.StorageError` that names the store and the setting to look at.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import logging
import os
import socket
import time
import urllib.parse
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from fsdl_lib.atomic import atomic_write_bytes
from fsdl_lib.exceptions import FsdlError, StorageError

log = logging.getLogger(__name__)

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
    endpoint and credentials (by default, the settings' ``FSDL_S3_*``)."""
    text = os.fspath(url)
    protocol = text.split("://", 1)[0] if "://" in text else ""
    if protocol in OBJECT_STORE_PROTOCOLS:
        try:
            from upath import UPath
        except ImportError:
            raise StorageError(f"{text}: an object store needs fsdl-lib's s3 extra ('fsdl-lib[s3]')") from None
        if store is None:
            from fsdl_lib.config import load_settings

            store = load_settings().object_store
        return UPath(text, **store.options())
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
    if not is_object_store(path):
        return Path(path).read_bytes()
    with storage_errors(path, "reading"):
        return bytes(path.fs.cat_file(path.path))  # type: ignore[attr-defined]


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
    try:
        atomic_write_bytes(Path(path), data, replace=False)
    except FileExistsError:
        return False
    return True


def exists(path: Path) -> bool:
    """Whether a file is at ``path`` (a store's failures said as :class:`StorageError`)."""
    if not is_object_store(path):
        return Path(path).is_file()
    with storage_errors(path, "reading"):
        return bool(path.fs.isfile(path.path))  # type: ignore[attr-defined]


def makedirs(folder: Path) -> None:
    """Create ``folder`` and its parents on a folder; an object store has no folders to make."""
    if not is_object_store(folder):
        Path(folder).mkdir(parents=True, exist_ok=True)


def read_many(root: Path, relatives: Sequence[str]) -> dict[str, bytes | OSError]:
    """The bytes of each file ``root/<relative>``, or the error that reading it raised (a file gone
    since it was listed, say). A store serves the requests at once, where one by one each would
    wait for the last; the store's own failures raise :class:`StorageError`."""
    if not is_object_store(root):
        found: dict[str, bytes | OSError] = {}
        for relative in relatives:
            try:
                found[relative] = (root / relative).read_bytes()
            except OSError as exc:
                found[relative] = exc
        return found
    keys = {f"{root.path.rstrip('/')}/{relative}": relative for relative in relatives}  # type: ignore[attr-defined]
    with storage_errors(root, "reading"):
        contents = root.fs.cat(list(keys), on_error="return") if keys else {}  # type: ignore[attr-defined]
    result: dict[str, bytes | OSError] = {}
    for key, relative in keys.items():
        value = contents.get(key, FileNotFoundError(key))
        if isinstance(value, Exception) and not isinstance(value, FileNotFoundError):
            with storage_errors(root, "reading"):
                raise value
        result[relative] = value
    return result


def sha256s(root: Path, relatives: Sequence[str], *, batch: int = 32) -> dict[str, str]:
    """The sha256 of each file ``root/<relative>``, read ``batch`` at a time (:func:`read_many`);
    a file that cannot be read raises its error."""
    found: dict[str, str] = {}
    for start in range(0, len(relatives), batch):
        for relative, data in read_many(root, relatives[start : start + batch]).items():
            if isinstance(data, OSError):
                raise data
            found[relative] = hashlib.sha256(data).hexdigest()
    return found


def delete(path: Path) -> None:
    """Remove the file at ``path``; nothing there is not an error, a refusal is."""
    with storage_errors(path, "deleting"), contextlib.suppress(FileNotFoundError):
        if is_object_store(path):
            # One DeleteObject, whose refusal raises; a bulk delete (what unlink does) reports
            # refused keys in its answer and would pass over them in silence.
            path.fs.rm_file(path.path)  # type: ignore[attr-defined]
        else:
            path.unlink()


@dataclass(frozen=True)
class StoredFile:
    """A file as a listing gives it: its size, when it was written and, on an object store, its ETag
    (which changes whenever its content does; a folder has none)."""

    size: int
    etag: str | None = None
    modified: float = 0.0
    """When it was last written (seconds since the epoch)."""


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
                        info = file.stat()
                        found[file.relative_to(local).as_posix()] = StoredFile(info.st_size, modified=info.st_mtime)
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
            modified = info.get("LastModified")
            found[relative.as_posix()] = StoredFile(
                int(info.get("size") or 0),
                str(info.get("ETag") or "") or None,
                modified.timestamp() if hasattr(modified, "timestamp") else 0.0,
            )
    return found


class Lock:
    """A lock :func:`locked` holds; :meth:`renew` keeps a store's lease from going stale."""

    def __init__(self, path: Path, owner: str, lease_seconds: float) -> None:
        self.path, self.owner, self.lease_seconds = path, owner, lease_seconds
        self._renewed = 0.0

    def renew(self, *, every: float = 15.0) -> None:
        """Push the lease's end on (at most every ``every`` seconds); a folder's lock needs nothing."""
        if is_object_store(self.path) and time.monotonic() - self._renewed >= every:
            write_bytes(self.path, self._lease())
            self._renewed = time.monotonic()

    def _lease(self) -> bytes:
        return json.dumps({"owner": self.owner, "expires": time.time() + self.lease_seconds}).encode()


@contextlib.contextmanager
def locked(path: Path, *, timeout: float = 600.0, lease_seconds: float = 120.0) -> Iterator[Lock]:
    """Hold the lock named ``path``: one holder at a time, others wait up to ``timeout`` seconds.

    A folder takes an advisory lock (``flock``) on the file, which its holder's death releases. An
    object store has no locks: the holder creates a lease object (a conditional PUT, so one of racing
    takers wins) under the bucket's ``locks/`` (:func:`lease_path`) that :meth:`Lock.renew` extends; a
    lease a dead holder left is taken over once it has run out (at once when the holder was a process
    of this host that is gone), and the holder removes the object when done.
    """
    owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    deadline = time.monotonic() + timeout
    if not is_object_store(path):
        yield from _flocked(Path(path), Lock(path, owner, lease_seconds), deadline)
        return
    path = lease_path(path)
    lock = Lock(path, owner, lease_seconds)
    while not create(path, lock._lease()):
        holder = _lease_of(path)
        if holder is not None and (holder.get("expires", 0) < time.time() or _died_here(str(holder.get("owner")))):
            log.warning("taking over %s from %s: its lease ran out or it died", describe(path), holder.get("owner"))
            delete(path)
            continue
        if time.monotonic() > deadline:
            raise FsdlError(f"{describe(path)} has been held by {holder and holder.get('owner')} for {timeout:.0f} s")
        time.sleep(0.5)
    lock._renewed = time.monotonic()
    try:
        yield lock
    finally:
        if (_lease_of(path) or {}).get("owner") == owner:
            delete(path)


LOCKS_PREFIX = "locks"
"""The prefix of a bucket that holds lease objects, the one place of the data bucket where the
services may delete (``fsdl_deploy.objectstore``'s bucket policies)."""


def lease_path(path: Path) -> Path:
    """The lease object of the lock named ``path`` on a store: ``<bucket>/locks/<the rest, quoted>``."""
    bucket, _, key = str(path.path).partition("/")  # type: ignore[attr-defined]
    return type(path)(f"s3://{bucket}/{LOCKS_PREFIX}/{urllib.parse.quote(key, safe='')}", **path.storage_options)  # type: ignore[call-arg, attr-defined]


SCRATCH_PREFIX = "scratch"
"""The prefix of a bucket that holds work in progress between tasks (the shards of an extraction), the
other place of the data bucket where the services may delete."""


def scratch_folder(root: Path, name: str) -> Path:
    """A folder for work in progress named ``name`` beside ``root``: ``root/scratch/name`` on a
    folder, ``<bucket>/scratch/name`` on a store (where the bucket policies let the services delete)."""
    if not is_object_store(root):
        return root / SCRATCH_PREFIX / name
    bucket = str(root.path).partition("/")[0]  # type: ignore[attr-defined]
    return type(root)(f"s3://{bucket}/{SCRATCH_PREFIX}/{name}", **root.storage_options)  # type: ignore[call-arg, attr-defined]


def _died_here(owner: str) -> bool:
    """Whether ``owner`` (host:pid:nonce) was a process of this host that no longer runs."""
    host, _, rest = owner.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _lease_of(path: Path) -> dict[str, Any] | None:
    try:
        lease = json.loads(read_bytes(path))
    except FileNotFoundError:
        return None
    except ValueError:
        return {}  # half a lease cannot be: a PUT is whole; anything else there is nobody's
    return lease if isinstance(lease, dict) else {}


def _flocked(path: Path, lock: Lock, deadline: float) -> Iterator[Lock]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise FsdlError(f"{path} has been held by another process for too long; is one stuck?") from None
                time.sleep(0.5)
            except OSError as exc:
                raise FsdlError(
                    f"cannot lock {path}: the file system does not support locking ({exc.strerror}); "
                    "keep the data folder on a local disk or a file system with working locks"
                ) from exc
        try:
            yield lock
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
