"""The JSON API against a real registry: predict, feedback, the served model, health."""

import pytest

from fsdl_lib.classes import SCENE_CLASSES
from tests.conftest import REVIEWER, SAMPLE_DIR
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
    predictions = app.extensions["fsdl_records"].predictions
    (row,) = predictions.rows()
    assert row["id"] == body["prediction_id"]
    assert row["model_version"] == "1"
    assert row["upload_state"] == "pending"
    assert predictions.upload_path(body["prediction_id"], "jpg").read_bytes() == photo


def review(client, decisions, auth=REVIEWER):
    """Decide as the reviewer, after looking at what is to be accepted (the review page shows each image)."""
    for decision in decisions:
        if decision["action"] != "reject":
            client.get(f"/review/image/{decision['prediction_id']}", headers={"Authorization": basic_auth(*auth)})
    return client.post(
        "/api/v1/review/decisions",
        json={"decisions": decisions},
        headers={"Authorization": basic_auth(*auth)},
    )


def basic_auth(user: str, password: str) -> str:
    import base64

    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def queue(client) -> dict:
    return client.get("/api/v1/review/queue", headers={"Authorization": basic_auth(*REVIEWER)}).json


def test_a_correction_waits_for_review_then_is_stored_by_content_hash(app, client, photo):
    import hashlib

    body = predict(client, photo)
    wrong = next(c for c in SCENE_CLASSES if c != body["label"])
    answer = {"prediction_id": body["prediction_id"], "correct": False, "label": wrong}
    first = client.post("/api/v1/feedback", json=answer)
    assert first.status_code == 200, first.json
    assert (first.json["review_state"], first.json["path"]) == ("pending", None)
    feedback_dir = app.config["FSDL_SETTINGS"].scenes_feedback_dir
    assert not list(feedback_dir.rglob("*.jpg")), "an unreviewed answer reached the training folder"
    again = client.post("/api/v1/feedback", json=answer)
    assert again.status_code == 200
    assert again.json["repeated"] is True
    other = client.post("/api/v1/feedback", json={**answer, "label": body["label"], "correct": True})
    assert other.status_code == 409
    assert "already has feedback" in other.json["error"]

    decided = review(client, [{"prediction_id": body["prediction_id"], "action": "accept"}])
    assert decided.status_code == 200, decided.json
    assert decided.json["results"][0]["review_state"] == "accepted"
    sha = hashlib.sha256(photo).hexdigest()
    assert (feedback_dir / wrong / f"{sha}.jpg").read_bytes() == photo
    (row,) = app.extensions["fsdl_records"].predictions.rows()
    assert (row["feedback_label"], row["review_label"], row["reviewed_by"]) == (wrong, wrong, REVIEWER[0])
    assert not app.extensions["fsdl_records"].predictions.upload_path(body["prediction_id"], "jpg").exists()
    again = review(client, [{"prediction_id": body["prediction_id"], "action": "accept"}])
    assert again.json["results"][0]["repeated"] is True
    changed = review(client, [{"prediction_id": body["prediction_id"], "action": "reject"}])
    assert changed.status_code == 409
    assert "cannot be decided again" in changed.json["results"][0]["error"]


def test_a_rejected_answer_leaves_no_file(app, client, photo):
    body = predict(client, photo)
    wrong = next(c for c in SCENE_CLASSES if c != body["label"])
    client.post("/api/v1/feedback", json={"prediction_id": body["prediction_id"], "correct": False, "label": wrong})
    assert review(client, [{"prediction_id": body["prediction_id"], "action": "reject"}]).status_code == 200
    assert not list(app.config["FSDL_SETTINGS"].scenes_feedback_dir.rglob("*.jpg"))
    assert not app.extensions["fsdl_records"].predictions.upload_path(body["prediction_id"], "jpg").exists()
    decisions = client.get("/api/v1/review/decisions", headers={"Authorization": basic_auth(*REVIEWER)}).json
    (decision,) = decisions["decisions"]
    assert (decision["reviewer"], decision["action"], decision["label"]) == (REVIEWER[0], "reject", None)


@pytest.mark.parametrize("auth", [None, ("reviewer", "wrong"), ("someone", REVIEWER[1])], ids=str)
def test_reviewing_needs_the_reviewer_login(client, auth):
    headers = {"Authorization": basic_auth(*auth)} if auth else {}
    for path in ("/api/v1/review/queue", "/api/v1/review/decisions", "/review"):
        response = client.get(path, headers=headers)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].startswith("Basic")
    response = client.post("/api/v1/review/decisions", json={"decisions": []}, headers=headers)
    assert response.status_code == 401
    assert response.json == {"error": "log in as the reviewer"}


def test_the_queue_puts_what_teaches_most_first_and_counts_agreeing_clients(app, client, photo):
    first = predict(client, photo)
    second_client = app.test_client()
    second_client.environ_base["REMOTE_ADDR"] = "198.51.100.20"  # the same image, from someone else
    second = predict(second_client, photo)
    sea = sorted((SAMPLE_DIR / "sea").glob("*.jpg"))[0].read_bytes()
    other = predict(client, sea)
    # The class the model finds least likely for this photo: the most surprising claim.
    surprising = min(first["probabilities"], key=first["probabilities"].get)
    for who, body, label in ((client, first, surprising), (second_client, second, surprising),
                             (client, other, other["label"])):  # fmt: skip
        answer = {"prediction_id": body["prediction_id"], "correct": label == body["label"], "label": label}
        assert who.post("/api/v1/feedback", json=answer).status_code == 200
    pending = queue(client)
    assert pending["pending"] == 3
    assert pending["oldest_age_seconds"] >= 0
    items = pending["items"]
    assert [item["teach"] for item in items] == sorted((item["teach"] for item in items), reverse=True)
    assert items[-1]["prediction_id"] == other["prediction_id"]  # a confirmation teaches least
    by_id = {item["prediction_id"]: item for item in items}
    assert by_id[first["prediction_id"]]["agreeing_clients"] == 1  # the other client's answer
    assert by_id[first["prediction_id"]]["disagreeing_clients"] == 0
    assert by_id[first["prediction_id"]]["answer_client"] != by_id[second["prediction_id"]]["answer_client"]
    assert by_id[first["prediction_id"]]["client_pending"] == 2  # this client's two answers wait
    assert by_id[first["prediction_id"]]["claimed_label"] == surprising
    assert by_id[first["prediction_id"]]["confidence"] == pytest.approx(max(first["probabilities"].values()))


def test_confident_predictions_are_sampled_for_review_and_unsure_ones_flagged(
    tmp_path, extractor, production_model, photo
):
    app = make_app(tmp_path, extractor, production_model, review_sample_rate=1.0, unsure_below=0.0, unsure_margin=0.0)
    client = app.test_client()
    body = predict(client, photo)
    assert body["unsure"] is False
    (item,) = queue(client)["items"]
    assert (item["prediction_id"], item["sampled"], item["claimed_label"]) == (body["prediction_id"], True, None)
    review(client, [{"prediction_id": body["prediction_id"], "action": "accept"}])
    stored = list(app.config["FSDL_SETTINGS"].scenes_feedback_dir.glob(f"{body['label']}/*.jpg"))
    assert [p.read_bytes() for p in stored] == [photo]  # confirmed as the model's class

    unsure_app = make_app(tmp_path / "unsure", extractor, production_model, unsure_below=1.01)
    assert predict(unsure_app.test_client(), photo)["unsure"] is True


def test_trust_policy_accepts_at_once(tmp_path, extractor, production_model, photo):
    app = make_app(tmp_path, extractor, production_model, feedback_policy="trust")
    client = app.test_client()
    body = predict(client, photo)
    response = client.post(
        "/api/v1/feedback", json={"prediction_id": body["prediction_id"], "correct": True, "label": body["label"]}
    )
    assert response.json["review_state"] == "accepted"
    assert response.json["path"].startswith(f"{body['label']}/")
    assert (app.config["FSDL_SETTINGS"].scenes_feedback_dir / response.json["path"]).read_bytes() == photo


def test_expired_prediction_is_gone_and_its_upload_removed(app, client, photo):
    import time

    body = predict(client, photo)
    predictions = app.extensions["fsdl_records"].predictions
    assert predictions.expire(now=time.time() + predictions.ttl + 1) == 1
    assert not predictions.upload_path(body["prediction_id"], "jpg").exists()
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
    assert app.extensions["fsdl_records"].predictions.rows() == []


def test_pages_render(client, production_model):
    index = client.get("/").get_data(as_text=True)
    assert "Select an image to classify" in index
    assert "/bootstrap/static/" in index  # Bootstrap is served locally, never from a CDN
    assert "cdn" not in index.lower()
    assert client.get("/bootstrap/static/css/bootstrap.min.css").status_code == 200
    details = client.get("/model").get_data(as_text=True)
    assert production_model in details
    assert "Dataset version" in details


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "with 1 to 500 items"),
        ({"decisions": []}, "with 1 to 500 items"),
        ({"decisions": [{"action": "accept"}]}, "needs a prediction_id"),
        ({"decisions": [{"prediction_id": "a" * 32, "action": "approve"}]}, "action must be one of"),
        ({"decisions": [{"prediction_id": "a" * 32, "action": "relabel"}]}, "only relabel, takes a label"),
        ({"decisions": [{"prediction_id": "a" * 32, "action": "accept", "label": "sea"}]}, "only relabel"),
        ({"decisions": [{"prediction_id": "a" * 32, "action": "relabel", "label": "cat"}]}, "label must be one of"),
    ],
    ids=["no-list", "empty", "no-id", "bad-action", "relabel-without-label", "accept-with-label", "bad-label"],
)
def test_bad_review_decisions_are_refused_before_any_is_applied(app, client, body, message):
    response = client.post("/api/v1/review/decisions", json=body, headers={"Authorization": basic_auth(*REVIEWER)})
    assert response.status_code == 400
    assert message in response.json["error"]
    assert app.extensions["fsdl_records"].review.decisions() == []


def test_a_decision_on_an_unknown_prediction_is_reported_per_item(client):
    response = review(client, [{"prediction_id": "f" * 32, "action": "reject"}])
    assert response.status_code == 409
    assert response.json["results"] == [
        {"prediction_id": "f" * 32, "error": f"no prediction with id {'f' * 32}", "status": 404}
    ]
