"""The monitoring page and its two JSON APIs: live quality (/api/v1/stats) and drift (/api/v1/drift)."""

from __future__ import annotations

import time

from flask import Blueprint, jsonify, render_template, request

from fsdl_lib.classes import SCENE_CLASSES
from fsdl_webapp.live_quality import summarise
from fsdl_webapp.services import get_drift_monitor, get_records

bp = Blueprint("monitoring", __name__)


@bp.get("/api/v1/stats")
def stats():
    bucket = request.args.get("bucket_seconds", "3600")
    if not bucket.isdigit() or not 60 <= int(bucket) <= 86400 * 7:
        return jsonify(error="bucket_seconds must be a whole number of seconds between 60 and 604800"), 400
    records = get_records()
    summary = summarise(records.predictions.rows(), time.time(), int(bucket), records.predictions.sampled_accuracy())
    return jsonify({**summary, "review_queue": records.review.summary()})


@bp.get("/api/v1/drift")
def drift():
    return jsonify(get_drift_monitor().status().as_dict())


@bp.get("/monitoring")
def page():
    return render_template("monitoring.html", classes=SCENE_CLASSES)
