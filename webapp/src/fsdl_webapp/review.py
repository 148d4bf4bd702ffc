"""The review queue: a page and a JSON API where a reviewer accepts, rejects or relabels answers.

Both ask for the reviewer's login (HTTP basic auth; ``make secrets`` generates the password). Only
accepted answers reach training; every decision is logged with who made it and when.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Sequence
from typing import Any

from flask import Blueprint, Response, jsonify, render_template, request, send_file

from fsdl_lib.classes import SCENE_CLASSES
from fsdl_webapp.access import login_required, username
from fsdl_webapp.errors import ApiError, status_of
from fsdl_webapp.feedback_db import AnswerConflictError, PredictionGoneError, UnknownPredictionError
from fsdl_webapp.review_queue import ACTIONS, ReviewQueue
from fsdl_webapp.services import get_records

bp = Blueprint("review", __name__)
log = logging.getLogger(__name__)
MAX_BATCH = 500


@bp.get("/review")
@login_required
def page() -> str:
    return render_template("review.html", classes=SCENE_CLASSES, actions=ACTIONS)


@bp.get("/review/image/<prediction_id>")
@login_required
def image(prediction_id: str) -> Response:
    image, ext = get_records().predictions.upload_of(prediction_id, shown=True)  # only what was shown may be accepted
    return send_file(io.BytesIO(image), mimetype="image/png" if ext == "png" else "image/jpeg", max_age=0)


@bp.get("/api/v1/review/queue")
@login_required
def queue():
    limit = request.args.get("limit", "50")
    if not limit.isdigit() or not 1 <= int(limit) <= MAX_BATCH:
        raise ApiError(f"limit must be a whole number from 1 to {MAX_BATCH}")
    review = get_records().review
    return jsonify(**review.summary(), items=review.items(int(limit)))


@bp.get("/api/v1/review/decisions")
@login_required
def decisions():
    return jsonify(decisions=get_records().review.decisions())


@bp.post("/api/v1/review/decisions")
@login_required
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
    results, conflicted = decide_many(get_records().review, items, reviewer=username())
    return jsonify(results=results), 409 if conflicted else 200


def decide_many(
    queue: ReviewQueue, decisions: Sequence[dict[str, Any]], *, reviewer: str
) -> tuple[list[dict[str, Any]], bool]:
    """Apply several decisions in order; per item its outcome, and whether any conflicted."""
    results, conflicted = [], False
    for item in decisions:
        try:
            decision = queue.decide(item["prediction_id"], item["action"], reviewer=reviewer, label=item.get("label"))
        except (AnswerConflictError, UnknownPredictionError, PredictionGoneError) as exc:
            conflicted = True
            results.append({"prediction_id": item["prediction_id"], "error": exc.message, "status": status_of(exc)})
            continue
        results.append(
            {
                "prediction_id": decision.prediction_id,
                "action": decision.action,
                "label": decision.label,
                "review_state": decision.review_state,
                "repeated": decision.repeated,
                "path": decision.path,
            }
        )
    return results, conflicted
