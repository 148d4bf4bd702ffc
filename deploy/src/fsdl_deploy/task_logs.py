"""Airflow's task logs on the object store: its remote logging, through ``fsdl_lib.storage``.

Airflow 3 reads a remote-log handler from the module its ``[logging] logging_config_class`` names:
``LOGGING_CONFIG`` is Airflow's own configuration unchanged, and ``REMOTE_TASK_LOG`` an object that
uploads a task's log when the task ends and reads it back for the UI and the REST API. This one keeps
the logs at ``FSDL_TASK_LOGS_URL`` (``s3://fsdl-logs/airflow`` on the platform's store) with this
service's credentials (``FSDL_S3_*``), so that a log written on any worker, on any host, can be read
from the API server once the task has ended; while it runs, Airflow serves it from the worker.

The distributed modes set ``AIRFLOW__LOGGING__LOGGING_CONFIG_CLASS`` to
``fsdl_deploy.task_logs.LOGGING_CONFIG`` (:func:`fsdl_deploy.objectstore.service_environment`). A
store that fails an upload leaves the log on the worker's disk and says so in the task's supervisor
log; it never fails the task.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from airflow.config_templates.airflow_local_settings import BASE_LOG_FOLDER, DEFAULT_LOGGING_CONFIG

from fsdl_lib import storage
from fsdl_lib.blocking_s3 import BlockingS3FileSystem
from fsdl_lib.config import load_settings
from fsdl_lib.exceptions import StorageError

log = logging.getLogger(__name__)

LOGGING_CONFIG = DEFAULT_LOGGING_CONFIG


@dataclass
class StoreTaskLogs:
    """Airflow's ``RemoteLogIO`` on a location of ``fsdl_lib.storage`` (a bucket prefix, or a folder).

    On a store it speaks through botocore's blocking client
    (:class:`fsdl_lib.blocking_s3.BlockingS3FileSystem`): the uploads run in Airflow's task
    supervisor, a Celery pool process that forks every task, where s3fs's event-loop thread would
    not survive the forks.
    """

    base_log_folder: Path
    remote: Path

    @property
    def processors(self) -> tuple[Any, ...]:
        return ()  # the log is uploaded whole when the task ends, not line by line

    def upload(self, path: os.PathLike[str] | str, ti: Any = None) -> None:
        local = Path(path) if Path(path).is_absolute() else self.base_log_folder / path
        if not local.is_file():
            return
        target = self.remote / local.relative_to(self.base_log_folder).as_posix()
        try:
            if storage.is_object_store(target):
                with storage.storage_errors(target, "writing"):
                    self._blocking(target).pipe_file(target.path, local.read_bytes())  # type: ignore[attr-defined]
            else:
                storage.write_bytes(target, local.read_bytes())
        except (StorageError, OSError) as exc:
            log.warning("the task log %s stays on this worker's disk only: %s", local, exc)

    def read(self, relative_path: str, ti: Any) -> tuple[list[str], list[str] | None]:
        target = self.remote / relative_path
        try:
            if storage.is_object_store(target):
                with storage.storage_errors(target, "reading"):
                    data = self._blocking(target).cat_file(target.path)  # type: ignore[attr-defined]
            else:
                data = storage.read_bytes(target)
        except FileNotFoundError:
            return [f"no log at {storage.describe(target)} yet (uploaded when the task ends)"], None
        except StorageError as exc:
            return [f"the task logs' store cannot be read: {exc}"], None
        return [storage.describe(target)], [data.decode(errors="replace")]

    @staticmethod
    def _blocking(target: Path) -> BlockingS3FileSystem:
        return BlockingS3FileSystem(**target.storage_options)  # type: ignore[attr-defined]  # one per process


def _remote_task_log() -> StoreTaskLogs | None:
    settings = load_settings()
    if not settings.task_logs_url:
        return None
    return StoreTaskLogs(Path(BASE_LOG_FOLDER), settings.location(settings.task_logs_url))


REMOTE_TASK_LOG = _remote_task_log()
DEFAULT_REMOTE_CONN_ID = None  # no Airflow connection: the store and credentials are the FSDL_S3_* settings
