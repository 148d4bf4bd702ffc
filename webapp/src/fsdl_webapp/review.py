"""The review queue: a page and a JSON API where a reviewer accepts, rejects or relabels answers.

Both ask for the reviewer's login (HTTP basic auth; ``make secrets`` generates the password). Only
accepted answers reach training; every decision is logged with who made it and when.
"""

from __future__ import annotations

import functools
import hmac
import logging
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, render_template, request, send_file

from fsdl_lib.classes import SCENE_CLASSES
from fsdl_webapp.errors import ApiError
from fsdl_webapp.feedback import ACTIONS, decide_many
from fsdl_webapp.services import get_store

bp = Blueprint("review", __name__)
log = logging.getLogger(__name__)
MAX_BATCH = 500


def reviewer_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """Let the request through only with the reviewer's login; anyone else gets a generic 401."""

    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        web = current_app.config["WEB_SETTINGS"]
        auth = request.authorization
        given_user = (auth.username or "") if auth else ""
        given_password = (auth.password or "") if auth else ""
        user_ok = hmac.compare_digest(given_user.encode(), web.reviewer_user.encode())
        password_ok = hmac.compare_digest(given_password.encode(), web.reviewer_password.encode())
        if not (web.reviewer_password and user_ok and password_ok):
            if auth is not None:
                log.warning("review login refused for user %r from %s", given_user, request.remote_addr)
            if not web.reviewer_password:
                log.error("WEBAPP_REVIEWER_PASSWORD is not set: reviewing is closed (make secrets sets it)")
            api = request.path.startswith("/api/")
            response = current_app.make_response(
                (jsonify(error="log in as the reviewer") if api else "Log in as the reviewer.", 401)
            )
            response.headers["WWW-Authenticate"] = 'Basic realm="feedback review", charset="UTF-8"'
            return response
        return view(*args, **kwargs)

    return wrapped


def reviewer() -> str:
    return request.authorization.username  # type: ignore[union-attr]  # set: reviewer_required ran


@bp.get("/review")
@reviewer_required
def page() -> str:
    return render_template("review.html", classes=SCENE_CLASSES, actions=ACTIONS)


@bp.get("/review/image/<prediction_id>")
@reviewer_required
def image(prediction_id: str) -> Response:
    path, ext = get_store().upload_of(prediction_id)
    return send_file(path, mimetype="image/png" if ext == "png" else "image/jpeg", max_age=0)


@bp.get("/api/v1/review/queue")
@reviewer_required
def queue():
    limit = request.args.get("limit", "50")
    if not limit.isdigit() or not 1 <= int(limit) <= MAX_BATCH:
        raise ApiError(f"limit must be a whole number from 1 to {MAX_BATCH}")
    store = get_store()
    return jsonify(**store.queue_summary(), items=store.queue(int(limit)))


@bp.get("/api/v1/review/decisions")
@reviewer_required
def decisions():
    return jsonify(decisions=get_store().decisions())


@bp.post("/api/v1/review/decisions")
@reviewer_required
def decide():
    body = request.get_json(silent=True)
    items = body.get("decisions") if isinstance(body, dict) else None
    if not isinstance(items, list) or not items or len(items) > MAX_BATCH:
        raise ApiError(
            f'send {{"decisions": [{{"prediction_id": ..., "action": "accept|reject|relabel", "label": ...}}]}} '
            f"with 1 to {MAX_BATCH} items"
        )
    for item in items:  # every item is checked before any is applied
        if not isinstance(item, dict) or not isinstance(item.get("prediction_id"), str):
            raise ApiError("each decision needs a prediction_id")
        if item.get("action") not in ACTIONS:
            raise ApiError(f"action must be one of: {', '.join(ACTIONS)}")
        if (item["action"] == "relabel") != (item.get("label") is not None):
            raise ApiError("relabel, and only relabel, takes a label")
        if item.get("label") is not None and item["label"] not in SCENE_CLASSES:
            raise ApiError(f"label must be one of: {', '.join(SCENE_CLASSES)}")
    results, conflicted = decide_many(get_store(), items, reviewer=reviewer())
    return jsonify(results=results), 409 if conflicted else 200
