"""The HTML pages: classify and give feedback; the served model's details and history."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from flask import Blueprint, current_app, render_template

from fsdl_lib import tracking
from fsdl_lib.classes import SCENE_CLASSES
from fsdl_webapp.services import get_model_service, get_records

bp = Blueprint("pages", __name__)
log = logging.getLogger(__name__)


@bp.app_template_filter("isotime")
def isotime(epoch: float | None) -> str:
    """An instant as ISO 8601 in UTC; the page's script shows it in the reader's local time."""
    return "" if epoch is None else datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")


@bp.get("/")
def index():
    service = get_model_service()
    return render_template(
        "index.html",
        classes=SCENE_CLASSES,
        served=service.current,
        status=service.status(),
        mlflow_url=current_app.config["MLFLOW_UI_URL"],
        max_upload_mb=current_app.config["WEB_SETTINGS"].max_upload_mb,
    )


@bp.get("/model")
def model():
    service = get_model_service()
    history = get_records().served.history()
    served = service.current
    return render_template(
        "model.html",
        served=served,
        previous=get_records().served.previous(served.version) if served else None,
        status=service.status(),
        history=history,
        registered=tracking.version_summaries(service.name, (item["model_version"] for item in history)),
        mlflow_url=current_app.config["MLFLOW_UI_URL"],
    )
