# ruff: noqa: E501  (one bad request per line reads best as a table)
"""A table of bad requests: each gets a clear JSON error and writes no file and no log row."""

import io

import pytest
from PIL import Image

from tests.conftest import SAMPLE_DIR
from tests.webapp.conftest import written_files

PHOTO = (SAMPLE_DIR / "forest" / "10078.jpg").read_bytes()
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
