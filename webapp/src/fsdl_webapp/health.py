"""Liveness and readiness probes."""

from __future__ import annotations

from flask import Blueprint, jsonify

from fsdl_webapp.services import get_model_service

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz():
    service = get_model_service()
    if service.current is None:
        return jsonify(status="not ready", error=service.last_error or "no model loaded yet"), 503
    return jsonify(status="ready", model=service.current.describe())
