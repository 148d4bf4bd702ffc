"""The review page and its JSON API (fsdl_webapp.review): what the reviewer sees first, what a
decision does to the files, and decisions refused before any is applied."""

from __future__ import annotations

import hashlib

import pytest

from fsdl_lib.classes import SCENE_CLASSES
from tests.conftest import REVIEWER, SAMPLE_DIR
from tests.webapp.conftest import (
    AS_REVIEWER,
    answer,
    client_at,
    make_app,
    predict,
    review,
    wrong_label,
)


def queue(client) -> dict:
    return client.get("/api/v1/review/queue", headers=AS_REVIEWER).json


def test_a_correction_waits_for_review_then_is_stored_by_content_hash(app, client, photo):
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
    decisions = client.get("/api/v1/review/decisions", headers=AS_REVIEWER).json
    (decision,) = decisions["decisions"]
    assert (decision["reviewer"], decision["action"], decision["label"]) == (REVIEWER[0], "reject", None)


def test_the_queue_puts_what_teaches_most_first_and_counts_agreeing_clients(app, client, photo):
    first = predict(client, photo)
    second_client = client_at(app, "198.51.100.20")  # the same image, from someone else
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
    app = make_app(tmp_path, production_model, review_sample_rate=1.0, unsure_below=0.0, unsure_margin=0.0)
    client = app.test_client()
    body = predict(client, photo)
    assert body["unsure"] is False
    (item,) = queue(client)["items"]
    assert (item["prediction_id"], item["sampled"], item["claimed_label"]) == (body["prediction_id"], True, None)
    review(client, [{"prediction_id": body["prediction_id"], "action": "accept"}])
    stored = list(app.config["FSDL_SETTINGS"].scenes_feedback_dir.glob(f"{body['label']}/*.jpg"))
    assert [p.read_bytes() for p in stored] == [photo]  # confirmed as the model's class

    unsure_app = make_app(tmp_path / "unsure", production_model, unsure_below=1.01)
    assert predict(unsure_app.test_client(), photo)["unsure"] is True


def test_a_bulk_accept_takes_nothing_the_reviewer_has_not_seen(app):
    people = [client_at(app, f"198.51.100.{30 + i}") for i in range(3)]
    ids = []
    for person in people:
        prediction = predict(person)
        assert answer(person, prediction, wrong_label(prediction)).status_code == 200
        ids.append(prediction["prediction_id"])
    reviewer = app.test_client()
    assert reviewer.get(f"/review/image/{ids[0]}", headers=AS_REVIEWER).status_code == 200  # only the first is shown
    response = reviewer.post(
        "/api/v1/review/decisions", json={"decisions": [{"prediction_id": i, "action": "accept"} for i in ids]},
        headers=AS_REVIEWER,
    )  # fmt: skip
    assert response.status_code == 409
    results = response.json["results"]
    assert results[0]["review_state"] == "accepted"
    assert [r.get("status") for r in results[1:]] == [409, 409]
    assert "open its image before accepting it" in results[1]["error"]
    states = {row["id"]: row["review_state"] for row in app.extensions["fsdl_records"].predictions.rows()}
    assert [states[i] for i in ids] == ["accepted", "pending", "pending"]
    # Rejecting needs no look: nothing reaches training.
    rejected = reviewer.post(
        "/api/v1/review/decisions",
        json={"decisions": [{"prediction_id": ids[1], "action": "reject"}]},
        headers=AS_REVIEWER,
    )
    assert rejected.status_code == 200


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
    response = client.post("/api/v1/review/decisions", json=body, headers=AS_REVIEWER)
    assert response.status_code == 400
    assert message in response.json["error"]
    assert app.extensions["fsdl_records"].review.decisions() == []


def test_a_decision_on_an_unknown_prediction_is_reported_per_item(client):
    response = review(client, [{"prediction_id": "f" * 32, "action": "reject"}])
    assert response.status_code == 409
    assert response.json["results"] == [
        {"prediction_id": "f" * 32, "error": f"no prediction with id {'f' * 32}", "status": 404}
    ]
