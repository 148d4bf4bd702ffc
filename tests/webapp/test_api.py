"""The JSON API against a real registry: predict, feedback, the served model, health."""

import pytest

from fsdl_lib.classes import SCENE_CLASSES
from tests.webapp.conftest import make_app


def predict(client, photo):
    response = client.post("/api/v1/predict", data={"image": (__import__("io").BytesIO(photo), "photo.jpg")})
    assert response.status_code == 200, response.json
    return response.json


def test_predict_answers_class_probabilities_and_model(app, client, photo, production_model):
    body = predict(client, photo)
    assert len(body["prediction_id"]) == 32
    assert body["label"] in SCENE_CLASSES
    assert set(body["probabilities"]) == set(SCENE_CLASSES)
    assert sum(body["probabilities"].values()) == pytest.approx(1.0, abs=1e-6)
    assert body["label"] == max(body["probabilities"], key=body["probabilities"].get)
    assert body["model"] == {"name": production_model, "version": "1"}
    store = app.extensions["fsdl_store"]
    (row,) = store.rows()
    assert row["id"] == body["prediction_id"]
    assert row["model_version"] == "1"
    assert row["upload_state"] == "pending"
    assert store.upload_path(body["prediction_id"], "jpg").read_bytes() == photo


def test_correction_is_stored_by_content_hash_and_retry_is_idempotent(app, client, photo):
    import hashlib

    body = predict(client, photo)
    wrong = next(c for c in SCENE_CLASSES if c != body["label"])
    answer = {"prediction_id": body["prediction_id"], "correct": False, "label": wrong}
    first = client.post("/api/v1/feedback", json=answer)
    assert first.status_code == 200, first.json
    sha = hashlib.sha256(photo).hexdigest()
    stored = app.config["FSDL_SETTINGS"].scenes_feedback_dir / wrong / f"{sha}.jpg"
    assert stored.read_bytes() == photo
    assert first.json["path"] == f"{wrong}/{sha}.jpg"
    again = client.post("/api/v1/feedback", json=answer)
    assert again.status_code == 200
    assert again.json["repeated"] is True
    other = client.post("/api/v1/feedback", json={**answer, "label": body["label"], "correct": True})
    assert other.status_code == 409
    assert "already has feedback" in other.json["error"]
    (row,) = app.extensions["fsdl_store"].rows()
    assert (row["feedback_label"], row["feedback_correct"], row["upload_state"]) == (wrong, 0, "used")
    assert not app.extensions["fsdl_store"].upload_path(body["prediction_id"], "jpg").exists()


def test_confirmation_stores_the_image_under_the_predicted_class(app, client, photo):
    body = predict(client, photo)
    response = client.post(
        "/api/v1/feedback", json={"prediction_id": body["prediction_id"], "correct": True, "label": body["label"]}
    )
    assert response.status_code == 200
    assert response.json["path"].startswith(f"{body['label']}/")


def test_expired_prediction_is_gone_and_its_upload_removed(app, client, photo):
    import time

    body = predict(client, photo)
    store = app.extensions["fsdl_store"]
    assert store.expire(now=time.time() + store.ttl + 1) == 1
    assert not store.upload_path(body["prediction_id"], "jpg").exists()
    response = client.post(
        "/api/v1/feedback", json={"prediction_id": body["prediction_id"], "correct": True, "label": body["label"]}
    )
    assert response.status_code == 410
    assert "expired" in response.json["error"]
    assert not list(app.config["FSDL_SETTINGS"].scenes_feedback_dir.rglob("*.jpg"))


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
    app = make_app(tmp_path, extractor, "never-registered")
    client = app.test_client()
    response = client.post("/api/v1/predict", data={"image": (__import__("io").BytesIO(photo), "a.jpg")})
    assert response.status_code == 503
    assert "no model is being served yet" in response.json["error"]
    assert "alias 'production'" in response.json["error"]
    assert client.get("/readyz").status_code == 503
    assert client.get("/api/v1/model").status_code == 503
    page = client.get("/").get_data(as_text=True)
    assert "No production model yet" in page
    assert "intel_scenes_parallel" in page
    assert app.extensions["fsdl_store"].rows() == []


def test_pages_render(client, production_model):
    index = client.get("/").get_data(as_text=True)
    assert "Select an image to classify" in index
    assert "/bootstrap/static/" in index  # Bootstrap is served locally, never from a CDN
    assert "cdn" not in index.lower()
    assert client.get("/bootstrap/static/css/bootstrap.min.css").status_code == 200
    details = client.get("/model").get_data(as_text=True)
    assert production_model in details
    assert "Dataset version" in details
