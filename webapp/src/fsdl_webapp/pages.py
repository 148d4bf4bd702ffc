"""The HTML pages: classify and give feedback; the served model's details."""

from __future__ import annotations

from flask import Blueprint, current_app, render_template

from fsdl_lib.classes import SCENE_CLASSES
from fsdl_webapp.services import get_model_service

bp = Blueprint("pages", __name__)


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
    return render_template(
        "model.html", served=service.current, status=service.status(), mlflow_url=current_app.config["MLFLOW_UI_URL"]
    )
