"""The test and benchmark object store (fsdl_tools.objectstore): a real ``weed server`` that starts with
the platform's buckets, and stops leaving no process and no socket behind."""

from __future__ import annotations

from fsdl_deploy.objectstore import BUCKETS
from fsdl_lib import storage
from fsdl_tools.objectstore import WeedServer


def test_starts_with_every_bucket_and_stops_leaving_nothing(tmp_path):
    server = WeedServer(tmp_path).start()
    proc = server.proc
    try:
        admin = server.bucket("data").fs
        assert all(admin.exists(name) for name in BUCKETS.values())
        storage.write_bytes(server.bucket("logs", "workers") / "dag" / "1.log", b"a task's log")
        assert server.sockets(), "weed made no Unix socket for its ports: the clean-up has nothing to check"
    finally:
        server.stop()
    assert proc.poll() is not None
    assert server.sockets() == []
