"""The JSON API: predict, feedback, the served model. Every error is JSON with a clear message."""

from __future__ import annotations

import logging
import random
import re
import time
import uuid

from flask import Blueprint, current_app, jsonify, request

from fsdl_lib.classes import SCENE_CLASSES, is_scene_class
from fsdl_lib.exceptions import InvalidImageError
from fsdl_lib.images import EXTENSIONS, decode_image
from fsdl_lib.metadata import strip_metadata
from fsdl_webapp.errors import ApiError, UnavailableError
from fsdl_webapp.metrics import get_metrics
from fsdl_webapp.services import get_model_service, get_records
from fsdl_webapp.throttle import client_id

bp = Blueprint("api", __name__, url_prefix="/api/v1")
log = logging.getLogger(__name__)

PREDICTION_ID = re.compile(r"^[0-9a-f]{32}$")


def no_model_message() -> str:
    service = get_model_service()
    detail = f" ({service.last_error})" if service.last_error else ""
    return (
        f"no model is being served yet{detail}. Train one with the intel_scenes DAG in Airflow, then give a "
        f"version of {service.name!r} the alias {service.alias!r} in the MLflow UI."
    )


@bp.post("/predict")
def predict():
    """Admitted already (fsdl_webapp.admission): past the latency budget it was answered 503 before it got here."""
    service = get_model_service()
    if "image" not in request.files:
        raise ApiError("send the image as the multipart form field 'image'")
    data = request.files["image"].read()
    if not data:
        raise ApiError("the uploaded file is empty")
    if service.current is None:
        raise UnavailableError(no_model_message())
    settings = current_app.config["FSDL_SETTINGS"]
    start = time.perf_counter()
    try:
        image, image_format = decode_image(data, max_pixels=settings.max_image_pixels)
        # What is kept (and, once accepted, trained on) carries no EXIF, GPS, XMP or comments:
        # the same pixels, the orientation and nothing else (fsdl_lib.metadata).
        data = strip_metadata(data)
    except InvalidImageError as exc:
        raise ApiError(f"not a usable image: {exc.reason}") from None
    result = service.predict(image)
    latency_ms = (time.perf_counter() - start) * 1000
    prediction_id = uuid.uuid4().hex
    web = current_app.config["WEB_SETTINGS"]
    top, second = sorted(result.probabilities.values(), reverse=True)[:2]
    unsure = top < web.unsure_below or top - second < web.unsure_margin
    # A few predictions, drawn at random, go to the reviewers unasked: confident mistakes are found no
    # other way, and the reviewed sample gives an accuracy that does not depend on who chose to answer.
    sampled = random.random() < web.review_sample_rate
    kept = get_records().predictions.record(
        prediction_id,
        data,
        EXTENSIONS[image_format],
        model_name=result.model.name,
        model_version=result.model.version,
        label=result.label,
        probabilities=result.probabilities,
        latency_ms=latency_ms,
        sampled=sampled,
        features=result.features,
        client=client_id(),
    )
    metrics = get_metrics()  # counted once recorded: a prediction that could not be kept is a 507
    metrics.predictions.labels(result.label, result.model.version).inc()
    metrics.latency.labels(result.model.version).observe(latency_ms / 1000)
    return jsonify(
        prediction_id=prediction_id,
        label=result.label,
        probabilities=result.probabilities,
        unsure=unsure,
        model={"name": result.model.name, "version": result.model.version},
        # False while the store that keeps uploads does not answer: an answer about it would be refused.
        kept=kept,
    )


@bp.post("/feedback")
def feedback():
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ApiError('send a JSON object: {"prediction_id": ..., "correct": true|false, "label": ...}')
    prediction_id = body.get("prediction_id")
    correct = body.get("correct")
    label = body.get("label")
    if not isinstance(prediction_id, str) or not PREDICTION_ID.match(prediction_id):
        raise ApiError("prediction_id must be the 32-character id returned by /api/v1/predict")
    if not isinstance(correct, bool):
        raise ApiError("correct must be true or false")
    if not is_scene_class(label):
        raise ApiError(f"label must be one of: {', '.join(SCENE_CLASSES)}")
    result = get_records().review.answer(prediction_id, correct, label, client=client_id())
    if not result.repeated:
        get_metrics().feedback.labels(result.model_version, str(correct).lower()).inc()
    return jsonify(
        status="stored",
        prediction_id=result.prediction_id,
        label=result.label,
        correct=result.correct,
        review_state=result.review_state,
        path=result.path,
        repeated=result.repeated,
    )


@bp.get("/model")
def model():
    service = get_model_service()
    served = service.current
    if served is None:
        raise UnavailableError(no_model_message())
    return jsonify({**served.describe(), "last_error": service.last_error})
