# ruff: noqa: E501  (one bad request per line reads best as a table)
"""The JSON API (fsdl_webapp.api) against a real registry: predict, feedback, the served model; and
bad requests, each of which gets a clear JSON error and writes no file and no log row."""

from __future__ import annotations

import io
import time

import pytest
from PIL import Image

from fsdl_lib.classes import SCENE_CLASSES
from fsdl_tools.clients import free_port
from tests.image_corpus import corpus
from tests.webapp.conftest import PHOTO, answer, make_app, predict, store_settings, written_files


def test_predict_answers_class_probabilities_and_model(app, client, photo, production_model):
    body = predict(client, photo)
    assert len(body["prediction_id"]) == 32
    assert body["label"] in SCENE_CLASSES
    assert set(body["probabilities"]) == set(SCENE_CLASSES)
    assert sum(body["probabilities"].values()) == pytest.approx(1.0, abs=1e-6)
    assert body["label"] == max(body["probabilities"], key=body["probabilities"].get)
    assert body["model"] == {"name": production_model, "version": "1"}
    predictions = app.extensions["fsdl_records"].predictions
    (row,) = predictions.rows()
    assert row["id"] == body["prediction_id"]
    assert row["model_version"] == "1"
    assert row["upload_state"] == "pending"
    assert predictions.upload_path(body["prediction_id"], "jpg").read_bytes() == photo
    assert body["kept"] is True


def test_a_store_that_is_down_keeps_predictions_going_and_refuses_answers(
    tmp_path, extractor, production_model, photo, caplog
):
    """The object store that keeps uploads stops answering: predictions go on, each saying its
    upload is not kept, without waiting for the store again and again; an answer gets a 503 that
    names the setting to check, never the store's address (that is in the log)."""
    down = f"http://127.0.0.1:{free_port()}"
    settings, web = store_settings(tmp_path, down, "webapp-key", "webapp-secret", "p")
    app = make_app(tmp_path, production_model, settings=settings, **web)
    client = app.test_client()
    started = time.monotonic()
    first = predict(client, photo)
    again = [predict(client, photo) for _ in range(3)]
    assert time.monotonic() - started < 20  # the store's timeouts are met once, not on every request
    assert [body["kept"] for body in (first, *again)] == [False] * 4
    assert first["label"] in SCENE_CLASSES
    assert {row["upload_state"] for row in app.extensions["fsdl_records"].predictions.rows()} == {"unkept"}
    response = answer(client, first, first["label"])
    assert response.status_code == 503
    assert response.headers["Retry-After"]
    assert "could not be kept" in response.json["error"]
    assert "FSDL_S3_ENDPOINT_URL" in response.json["error"]
    assert down.split("//")[1] not in response.json["error"]
    assert down.split("//")[1] in caplog.text  # the operator's details


def test_model_endpoint_and_probes(client, production_model, extractor):
    model = client.get("/api/v1/model").json
    assert model["name"] == production_model
    assert model["version"] == "1"
    assert model["alias"] == "production"
    assert model["backbone_id"] == extractor.id
    assert len(model["dataset_version"]) == 64
    assert client.get("/healthz").json == {"status": "ok"}
    assert client.get("/readyz").status_code == 200


def test_without_a_production_model(tmp_path, extractor, photo, registry):
    app = make_app(tmp_path, "never-registered")
    client = app.test_client()
    response = client.post("/api/v1/predict", data={"image": (io.BytesIO(photo), "a.jpg")})
    assert response.status_code == 503
    assert "no model is being served yet" in response.json["error"]
    assert "alias 'production'" in response.json["error"]
    assert client.get("/readyz").status_code == 503
    assert client.get("/api/v1/model").status_code == 503
    page = client.get("/").get_data(as_text=True)
    assert "No production model yet" in page
    assert "intel_scenes_parallel" in page
    assert app.extensions["fsdl_records"].predictions.rows() == []


# --- bad requests ---------------------------------------------------------------------------------

VALID_ID = "0123456789abcdef0123456789abcdef"


def encoded(fmt: str, size=(8, 8), mode="RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size).save(buffer, format=fmt)
    return buffer.getvalue()


def upload(data: bytes, field: str = "image", name: str = "x.jpg"):
    return {"data": {field: (io.BytesIO(data), name)}, "content_type": "multipart/form-data"}


def feedback(**body):
    return {"json": body}


def other_label(pred):
    return next(c for c in ("buildings", "forest", "glacier") if c != pred["label"])


CASES = [
    # (id, method, path, request kwargs or a function of the prediction, status, message)
    ("predict-no-field", "post", "/api/v1/predict", {"data": {}}, 400, "multipart form field 'image'"),
    ("predict-wrong-field", "post", "/api/v1/predict", upload(PHOTO, field="file"), 400, "field 'image'"),
    ("predict-empty-file", "post", "/api/v1/predict", upload(b""), 400, "empty"),
    ("predict-text-as-jpg", "post", "/api/v1/predict", upload(b"hello world\n" * 50), 400, "not a JPEG or PNG"),
    ("predict-truncated-jpeg", "post", "/api/v1/predict", upload(PHOTO[: len(PHOTO) // 2]), 400, "truncated or corrupt"),
    ("predict-gif", "post", "/api/v1/predict", upload(encoded("GIF"), name="x.gif"), 400, "not a JPEG or PNG"),
    ("predict-bmp-named-png", "post", "/api/v1/predict", upload(encoded("BMP"), name="x.png"), 400, "not a JPEG or PNG"),
    ("predict-webp", "post", "/api/v1/predict", upload(encoded("WEBP")), 400, "not a JPEG or PNG"),
    ("predict-pixel-bomb", "post", "/api/v1/predict", upload(encoded("PNG", (6000, 5000), "1")), 400, "more than the limit"),
    ("predict-too-large", "post", "/api/v1/predict", upload(b"\xff\xd8" + b"0" * (11 * 1024 * 1024)), 413, "larger than the limit"),
    ("predict-json-body", "post", "/api/v1/predict", feedback(image="aGVsbG8="), 400, "field 'image'"),
    ("predict-get", "get", "/api/v1/predict", {}, 405, "method GET is not allowed"),
    ("predict-put", "put", "/api/v1/predict", upload(PHOTO), 405, "method PUT is not allowed"),
    ("feedback-get", "get", "/api/v1/feedback", {}, 405, "not allowed"),
    ("feedback-delete", "delete", "/api/v1/feedback", {}, 405, "not allowed"),
    ("model-post", "post", "/api/v1/model", {}, 405, "not allowed"),
    ("unknown-endpoint", "get", "/api/v1/nothing", {}, 404, "no such API endpoint"),
    ("feedback-no-body", "post", "/api/v1/feedback", {}, 400, "send a JSON object"),
    ("feedback-list-body", "post", "/api/v1/feedback", {"json": [1, 2]}, 400, "send a JSON object"),
    ("feedback-malformed-json", "post", "/api/v1/feedback", {"data": "{nope", "content_type": "application/json"}, 400, "JSON object"),
    ("feedback-form-encoded", "post", "/api/v1/feedback", {"data": {"prediction_id": VALID_ID}}, 400, "JSON object"),
    ("feedback-no-id", "post", "/api/v1/feedback", feedback(correct=True, label="sea"), 400, "prediction_id must be"),
    ("feedback-id-traversal", "post", "/api/v1/feedback", feedback(prediction_id="../../etc/passwd", correct=True, label="sea"), 400, "prediction_id must be"),
    ("feedback-id-short", "post", "/api/v1/feedback", feedback(prediction_id="abc123", correct=True, label="sea"), 400, "prediction_id must be"),
    ("feedback-id-uppercase", "post", "/api/v1/feedback", feedback(prediction_id=VALID_ID.upper(), correct=True, label="sea"), 400, "prediction_id must be"),
    ("feedback-id-number", "post", "/api/v1/feedback", feedback(prediction_id=12345, correct=True, label="sea"), 400, "prediction_id must be"),
    ("feedback-no-correct", "post", "/api/v1/feedback", feedback(prediction_id=VALID_ID, label="sea"), 400, "correct must be true or false"),
    ("feedback-correct-string", "post", "/api/v1/feedback", feedback(prediction_id=VALID_ID, correct="false", label="sea"), 400, "correct must be"),
    ("feedback-correct-int", "post", "/api/v1/feedback", feedback(prediction_id=VALID_ID, correct=0, label="sea"), 400, "correct must be"),
    ("feedback-no-label", "post", "/api/v1/feedback", feedback(prediction_id=VALID_ID, correct=False), 400, "label must be one of"),
    ("feedback-unknown-label", "post", "/api/v1/feedback", feedback(prediction_id=VALID_ID, correct=False, label="beach"), 400, "label must be one of"),
    ("feedback-label-case", "post", "/api/v1/feedback", feedback(prediction_id=VALID_ID, correct=False, label="Forest"), 400, "label must be one of"),
    ("feedback-label-traversal", "post", "/api/v1/feedback", feedback(prediction_id=VALID_ID, correct=False, label="../sea"), 400, "label must be one of"),
    ("feedback-label-list", "post", "/api/v1/feedback", feedback(prediction_id=VALID_ID, correct=False, label=["sea"]), 400, "label must be one of"),
    ("feedback-unknown-id", "post", "/api/v1/feedback", feedback(prediction_id=VALID_ID, correct=False, label="sea"), 404, "no prediction with id"),
    ("feedback-correct-but-other-label", "post", "/api/v1/feedback",
     lambda p: feedback(prediction_id=p["prediction_id"], correct=True, label=other_label(p)), 400, "differs from the prediction"),
    ("feedback-wrong-but-same-label", "post", "/api/v1/feedback",
     lambda p: feedback(prediction_id=p["prediction_id"], correct=False, label=p["label"]), 400, "is what the model predicted"),
]  # fmt: skip


@pytest.fixture
def prediction(client):
    response = client.post("/api/v1/predict", **upload(PHOTO))
    assert response.status_code == 200
    return response.json


def test_the_table_is_big_enough():
    assert len(CASES) >= 30
    assert len({case[0] for case in CASES}) == len(CASES)


@pytest.mark.parametrize(("name", "method", "path", "kwargs", "status", "message"), CASES, ids=[c[0] for c in CASES])
def test_bad_request(app, client, prediction, name, method, path, kwargs, status, message):
    settings = app.config["FSDL_SETTINGS"]
    records = app.extensions["fsdl_records"]
    state_dir = records.review.db.path.parent
    files_before = written_files(state_dir) + written_files(settings.data_dir)
    rows_before = records.predictions.rows()
    if callable(kwargs):
        kwargs = kwargs(prediction)
    response = getattr(client, method)(path, **kwargs)
    assert response.status_code == status
    assert response.is_json, response.get_data(as_text=True)[:200]
    assert message in response.json["error"]
    assert "Traceback" not in response.get_data(as_text=True)
    assert written_files(state_dir) + written_files(settings.data_dir) == files_before
    assert records.predictions.rows() == rows_before


@pytest.mark.parametrize("sample", corpus(), ids=lambda s: s.name)
def test_upload_is_classified_or_refused_with_a_reason(sample, app, client, tmp_path):
    response = client.post(
        "/api/v1/predict", data={"image": (io.BytesIO(sample.data), sample.name)}, content_type="multipart/form-data"
    )
    if sample.accepted:
        assert response.status_code == 200, response.json
        body = response.json
        assert body["label"] in body["probabilities"]
        stored = written_files(tmp_path / "webapp")
        assert len(stored) == 1  # the upload, kept until feedback arrives
        assert stored[0].suffix == (".png" if sample.name.endswith(".png") else ".jpg")
    else:
        assert response.status_code == 400, response.json
        assert response.is_json
        assert sample.reason in response.json["error"]
        assert written_files(tmp_path / "webapp") == []
        assert written_files(tmp_path / "data") == []
