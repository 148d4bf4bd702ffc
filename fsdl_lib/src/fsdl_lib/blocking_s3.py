"""The object store through botocore's blocking client, for processes where s3fs cannot run.

s3fs runs its requests on an asyncio loop in a thread of its own. A process that gevent has
patched (the web app's gunicorn workers) has no such thread: that loop would run as a greenlet,
and every later call would find it running and refuse ("Calling sync() from within a running
loop"). botocore's blocking client, on sockets gevent has patched, yields to the other greenlets
while it waits, which is all such a process needs. :func:`use_blocking_s3` puts it behind the
``s3://`` locations of :mod:`fsdl_lib.storage`; it answers the calls the storage seam makes (whole
writes, conditional creates, reads, listings, deletes) and raises what s3fs raises for the same
faults, so the seam's errors read the same from either.
"""

from __future__ import annotations

import io
from typing import Any

import fsspec
from fsspec.spec import AbstractFileSystem

PROTOCOLS = ("s3", "s3a")
_MISSING = frozenset({"NoSuchKey", "NoSuchBucket", "404", "NotFound"})
_REFUSED = frozenset({"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403", "Forbidden"})


class BlockingS3FileSystem(AbstractFileSystem):
    """What :mod:`fsdl_lib.storage` calls on an ``s3://`` location, over one botocore client."""

    protocol = PROTOCOLS
    root_marker = ""

    def __init__(
        self,
        key: str | None = None,
        secret: str | None = None,
        client_kwargs: dict[str, Any] | None = None,
        config_kwargs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**{k: v for k, v in kwargs.items() if k not in ("use_listings_cache",)})
        import botocore.config
        import botocore.session

        client_kwargs = dict(client_kwargs or {})
        config = botocore.config.Config(**(config_kwargs or {}), s3={"addressing_style": "path"})
        self.client = botocore.session.get_session().create_client(
            "s3", aws_access_key_id=key, aws_secret_access_key=secret, config=config, **client_kwargs
        )

    @classmethod
    def _strip_protocol(cls, path: Any) -> str:
        text = str(path)
        for protocol in PROTOCOLS:
            text = text.removeprefix(f"{protocol}://")
        return text.rstrip("/")

    @staticmethod
    def _split(path: str) -> tuple[str, str]:
        bucket, _, key = path.partition("/")
        return bucket, key

    def _call(self, operation: str, path: str, **kwargs: Any) -> Any:
        from botocore.exceptions import ClientError

        try:
            return getattr(self.client, operation)(**kwargs)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = str(error.get("Code", ""))
            message = f"{error.get('Message') or code}: {path}"
            if code in _MISSING:
                raise FileNotFoundError(message) from None
            if code in _REFUSED:
                raise PermissionError(message) from None
            if code == "PreconditionFailed":
                raise FileExistsError(message) from None
            raise OSError(message) from None

    # --- writes ----------------------------------------------------------------------------------
    def pipe_file(self, path: str, value: bytes, mode: str = "overwrite", **kwargs: Any) -> None:
        bucket, key = self._split(self._strip_protocol(path))
        condition = {"IfNoneMatch": "*"} if mode == "create" else {}
        self._call("put_object", path, Bucket=bucket, Key=key, Body=value, **condition)

    def rm_file(self, path: str) -> None:
        bucket, key = self._split(self._strip_protocol(path))
        self._call("delete_object", path, Bucket=bucket, Key=key)

    def mkdir(self, path: str, create_parents: bool = True, **kwargs: Any) -> None:
        bucket, key = self._split(self._strip_protocol(path))
        if not key:
            self._call("create_bucket", path, Bucket=bucket)

    def makedirs(self, path: str, exist_ok: bool = False) -> None:
        pass  # no folders on a store

    # --- reads -----------------------------------------------------------------------------------
    def cat_file(self, path: str, start: int | None = None, end: int | None = None, **kwargs: Any) -> bytes:
        bucket, key = self._split(self._strip_protocol(path))
        body = self._call("get_object", path, Bucket=bucket, Key=key)["Body"]
        with body:
            data = body.read()
        return data[start:end] if start is not None or end is not None else data

    def cat(self, path: Any, recursive: bool = False, on_error: str = "raise", **kwargs: Any) -> Any:
        paths = [path] if isinstance(path, str) else list(path)
        found: dict[str, Any] = {}
        for one in paths:
            try:
                found[one] = self.cat_file(one)
            except Exception as exc:
                if on_error == "raise":
                    raise
                found[one] = exc
        return found[paths[0]] if isinstance(path, str) else found

    def _open(self, path: str, mode: str = "rb", **kwargs: Any) -> io.BytesIO:
        if mode != "rb":
            raise NotImplementedError("writes go through pipe_file (fsdl_lib.storage.write_bytes)")
        return io.BytesIO(self.cat_file(path))

    def info(self, path: str, **kwargs: Any) -> dict[str, Any]:
        name = self._strip_protocol(path)
        bucket, key = self._split(name)
        if not key:
            self._call("head_bucket", path, Bucket=bucket)
            return {"name": bucket, "type": "directory", "size": 0}
        try:
            head = self._call("head_object", path, Bucket=bucket, Key=key)
        except FileNotFoundError:
            listing = self._call("list_objects_v2", path, Bucket=bucket, Prefix=key + "/", MaxKeys=1)
            if listing.get("KeyCount"):
                return {"name": name, "type": "directory", "size": 0}
            raise
        return {"name": name, "type": "file", "size": head["ContentLength"], "ETag": head.get("ETag")}

    def isfile(self, path: str) -> bool:
        try:
            return bool(self.info(path)["type"] == "file")
        except FileNotFoundError:
            return False

    def find(self, path: str, maxdepth: int | None = None, withdirs: bool = False, detail: bool = False,
             **kwargs: Any) -> Any:  # fmt: skip
        name = self._strip_protocol(path)
        bucket, key = self._split(name)
        prefix = f"{key}/" if key else ""
        found: dict[str, dict[str, Any]] = {}
        token: dict[str, str] = {}
        while True:
            page = self._call("list_objects_v2", path, Bucket=bucket, Prefix=prefix, **token)
            for item in page.get("Contents", []):
                found[f"{bucket}/{item['Key']}"] = {
                    "name": f"{bucket}/{item['Key']}", "type": "file", "size": item["Size"],
                    "ETag": item.get("ETag"), "LastModified": item.get("LastModified"),
                }  # fmt: skip
            if not page.get("IsTruncated"):
                break
            token = {"ContinuationToken": page["NextContinuationToken"]}
        return found if detail else sorted(found)


def use_blocking_s3() -> None:
    """Serve ``s3://`` locations of this process with :class:`BlockingS3FileSystem` from now on."""
    for protocol in PROTOCOLS:
        fsspec.register_implementation(protocol, BlockingS3FileSystem, clobber=True)
