"""The HTML pages: classify and give feedback; the served model's details and history."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, current_app, render_template

from fsdl_lib.classes import SCENE_CLASSES
from fsdl_webapp.rollback import previous_versions
from fsdl_webapp.services import get_model_service, get_store

bp = Blueprint("pages", __name__)
log = logging.getLogger(__name__)


@bp.app_template_filter("isotime")
def isotime(epoch: float | None) -> str:
    """An instant as ISO 8601 in UTC; the page's script shows it in the reader's local time."""
    return "" if epoch is None else datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")


def registration(name: str, versions: Iterable[str]) -> dict[str, dict[str, Any]]:
    """What each version recorded when it was registered: candidate, scores, time."""
    import mlflow

    client = mlflow.MlflowClient()
    found: dict[str, dict[str, Any]] = {}
    for version in dict.fromkeys(versions):
        try:
            registered = client.get_model_version(name, version)
        except Exception as exc:  # the registry may be down; the page shows what it has
            log.warning("version %s of %s not read from the registry: %s", version, name, exc)
            continue
        found[version] = {
            "candidate": registered.tags.get("candidate"),
            "val_f1": registered.tags.get("val_f1"),
            "test_f1": registered.tags.get("test_f1"),
            "decision": registered.tags.get("promotion_decision"),
            "registered_at": registered.creation_timestamp / 1000 if registered.creation_timestamp else None,
        }
    return found


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
    history = get_store().served_history()
    served = service.current
    return render_template(
        "model.html",
        served=served,
        previous=next(iter(previous_versions(served.version)), None) if served else None,
        status=service.status(),
        history=history,
        registered=registration(service.name, (item["model_version"] for item in history)),
        mlflow_url=current_app.config["MLFLOW_UI_URL"],
    )
