"""The process-wide resources behind an ``init_app`` seam: the model service, the records (the
prediction log, the review queue, the served history and the drift log) and the drift monitor."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from flask import Flask, current_app

from fsdl_lib.config import Settings
from fsdl_webapp.admission import Admission
from fsdl_webapp.config import WebSettings
from fsdl_webapp.drift import DriftMonitor
from fsdl_webapp.feedback_db import FeedbackDatabase
from fsdl_webapp.model_service import ModelService
from fsdl_webapp.offload import gevent_patched
from fsdl_webapp.prediction_log import PredictionLog
from fsdl_webapp.review_queue import QueueLimits, ReviewQueue
from fsdl_webapp.served_log import DriftLog, ServedHistory


@dataclass(frozen=True)
class Records:
    """What the web app keeps, one object per concern, over one database."""

    predictions: PredictionLog
    review: ReviewQueue
    served: ServedHistory
    drift: DriftLog

    def housekeeping(self) -> None:
        """Write the files of accepted answers a crash left unwritten, expire what waited too long
        for review, then the uploads nobody answered in time."""
        self.review.export_accepted()
        self.review.enforce_limits()
        self.predictions.expire()


def open_records(state_dir: Path, settings: Settings, web: WebSettings) -> Records:
    db = FeedbackDatabase(state_dir / "feedback.db")
    db.init()
    uploads = settings.location(web.uploads_url) if web.uploads_url else state_dir / "uploads"
    predictions = PredictionLog(db, uploads, web.prediction_ttl_seconds)
    predictions.init()
    limits = QueueLimits(
        max_pending=web.review_queue_max,
        max_age_seconds=web.review_max_age_days * 86400,
        per_client=web.review_pending_per_client,
    )
    review = ReviewQueue(db, predictions, settings.scenes_feedback_dir, policy=web.feedback_policy, limits=limits)
    return Records(predictions, review, ServedHistory(db), DriftLog(db))


def init_app(app: Flask, *, start_polling: bool = True) -> None:
    # The model poll retries by itself every few seconds: MLflow's own retries (seven, with
    # back-off, minutes in all) would only delay noticing that the registry is back.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "20")
    settings: Settings = app.config["FSDL_SETTINGS"]
    web: WebSettings = app.config["WEB_SETTINGS"]
    if web.mlflow_password:  # the web app's own read-only login, whatever the environment holds
        os.environ["MLFLOW_TRACKING_USERNAME"] = web.mlflow_username
        os.environ["MLFLOW_TRACKING_PASSWORD"] = web.mlflow_password
    if gevent_patched():  # s3fs's own event loop cannot run under gevent; botocore's blocking client can
        from fsdl_lib.blocking_s3 import use_blocking_s3

        use_blocking_s3()
    state_dir = Path(app.config["WEB_STATE_DIR"])
    records = open_records(state_dir, settings, web)
    service = ModelService(
        Path(web.graph_dir) if web.graph_dir else state_dir / "graphs",
        settings.scenes_model_name,
        web.model_alias,
        web.poll_seconds,
        admission=Admission(web.latency_budget_seconds, web.service_seconds, web.max_in_flight),
        on_change=lambda served: records.served.record(served.name, served.version, served.alias, served.loaded_at),
    )
    monitor = DriftMonitor(service, records.predictions, records.drift, web, status_path=settings.drift_status_path)
    app.extensions["fsdl_records"] = records
    app.extensions["fsdl_model"] = service
    app.extensions["fsdl_drift"] = monitor
    if start_polling:
        records.housekeeping()
        service.start(housekeeping=records.housekeeping)
        monitor.start()
    else:
        service.refresh()


def get_model_service() -> ModelService:
    return current_app.extensions["fsdl_model"]


def get_records() -> Records:
    return current_app.extensions["fsdl_records"]


def get_drift_monitor() -> DriftMonitor:
    return current_app.extensions["fsdl_drift"]
