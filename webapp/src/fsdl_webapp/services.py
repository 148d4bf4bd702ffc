"""The process-wide resources behind an ``init_app`` seam: the model service, the feedback store and
the drift monitor."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from flask import Flask, current_app

from fsdl_lib.config import Settings
from fsdl_webapp.config import WebSettings
from fsdl_webapp.drift import DriftMonitor
from fsdl_webapp.feedback import FeedbackStore, QueueLimits
from fsdl_webapp.model_service import ModelService


def init_app(app: Flask, *, extractor: Any = None, start_polling: bool = True) -> None:
    # The model poll retries by itself every few seconds: MLflow's own retries (seven, with
    # back-off, minutes in all) would only delay noticing that the registry is back.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "20")
    settings: Settings = app.config["FSDL_SETTINGS"]
    web: WebSettings = app.config["WEB_SETTINGS"]
    if web.mlflow_password:  # the web app's own read-only login, whatever the environment holds
        os.environ["MLFLOW_TRACKING_USERNAME"] = web.mlflow_username
        os.environ["MLFLOW_TRACKING_PASSWORD"] = web.mlflow_password
    if extractor is None:
        from fsdl_lib.features import FeatureExtractor

        extractor = FeatureExtractor.from_settings(settings)  # once per process, never per request
    state_dir = Path(app.config["WEB_STATE_DIR"])
    limits = QueueLimits(
        max_pending=web.review_queue_max,
        max_age_seconds=web.review_max_age_days * 86400,
        per_client=web.review_pending_per_client,
    )
    store = FeedbackStore(
        state_dir, settings.scenes_feedback_dir, web.prediction_ttl_seconds, policy=web.feedback_policy, limits=limits
    )
    store.init()
    service = ModelService(
        extractor,
        settings.scenes_model_name,
        web.model_alias,
        web.poll_seconds,
        on_change=lambda served: store.record_served(served.name, served.version, served.alias, served.loaded_at),
    )
    monitor = DriftMonitor(service, store, web, status_path=settings.drift_status_path)
    app.extensions["fsdl_store"] = store
    app.extensions["fsdl_model"] = service
    app.extensions["fsdl_drift"] = monitor
    if start_polling:
        store.housekeeping()
        service.start(housekeeping=store.housekeeping)
        monitor.start()
    else:
        service.refresh()


def get_model_service() -> ModelService:
    return current_app.extensions["fsdl_model"]


def get_store() -> FeedbackStore:
    return current_app.extensions["fsdl_store"]


def get_drift_monitor() -> DriftMonitor:
    return current_app.extensions["fsdl_drift"]
