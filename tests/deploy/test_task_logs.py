"""Airflow's task logs on the object store (fsdl_deploy.task_logs) against a real SeaweedFS: what a
worker uploads when a task ends, the API server reads back; a store that is down loses no log."""

from __future__ import annotations

import uuid

from fsdl_deploy.task_logs import StoreTaskLogs
from fsdl_lib import storage
from fsdl_lib.storage import ObjectStore, location
from fsdl_tools.clients import free_port

RELATIVE = "dag_id=wine_quality/run_id=manual__1/task_id=split_data/attempt=1.log"


def test_a_finished_tasks_log_is_uploaded_and_read_back_from_the_store(tmp_path, object_store):
    local = tmp_path / "logs" / RELATIVE
    local.parent.mkdir(parents=True)
    local.write_text('{"event": "split 1599 rows"}\n')
    remote = object_store.bucket("logs", "workers") / uuid.uuid4().hex
    logs = StoreTaskLogs(tmp_path / "logs", remote)
    logs.upload(RELATIVE)
    assert storage.read_bytes(remote / RELATIVE) == local.read_bytes()
    local.unlink()  # the worker's copy gone (another host, or cleaned up)
    sources, content = logs.read(RELATIVE, ti=None)
    assert content == ['{"event": "split 1599 rows"}\n']
    assert str(remote / RELATIVE) in sources[0]
    sources, content = logs.read("dag_id=x/run_id=y/task_id=z/attempt=1.log", ti=None)
    assert content is None
    assert "uploaded when the task ends" in sources[0]


def test_a_store_that_is_down_leaves_the_log_on_the_worker_and_fails_nothing(tmp_path, caplog):
    local = tmp_path / "logs" / RELATIVE
    local.parent.mkdir(parents=True)
    local.write_text("a log line\n")
    down = location("s3://fsdl-logs/airflow", ObjectStore(f"http://127.0.0.1:{free_port()}", "k", "s"))
    StoreTaskLogs(tmp_path / "logs", down).upload(local)
    assert local.read_text() == "a log line\n"
    assert "stays on this worker's disk only" in caplog.text
    assert "FSDL_S3_ENDPOINT_URL" in caplog.text
    sources, content = StoreTaskLogs(tmp_path / "logs", down).read(RELATIVE, ti=None)
    assert content is None
    assert "cannot be read" in sources[0]
