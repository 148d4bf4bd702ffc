"""The review queue under attack: fabricated consensus, a flood of answers, blind bulk accepts.

Before: six answers from one client about one image showed "5 of 5 other predictions of this image
agree" at the top of the queue; every answer waited for ever with its upload; a bulk accept took
whatever was selected, seen or not.
"""

from __future__ import annotations

import base64
import time

import pytest

from fsdl_webapp.services import Records
from tests.conftest import REVIEWER, SAMPLE_DIR
from tests.webapp.conftest import make_app
from tests.webapp.test_records import open_for_test

PHOTO = (SAMPLE_DIR / "forest" / "10078.jpg").read_bytes()
AUTH = {"Authorization": "Basic " + base64.b64encode(":".join(REVIEWER).encode()).decode()}


def client_at(app, address: str):
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def predict(client, data: bytes = PHOTO) -> dict:
    response = client.post("/api/v1/predict", data={"image": (__import__("io").BytesIO(data), "p.jpg")})
    assert response.status_code == 200, response.json
    return response.json


def answer(client, prediction: dict, label: str):
    body = {"prediction_id": prediction["prediction_id"], "correct": label == prediction["label"], "label": label}
    return client.post("/api/v1/feedback", json=body)


def wrong_label(prediction: dict) -> str:
    return min(prediction["probabilities"], key=prediction["probabilities"].get)


def test_one_client_cannot_fabricate_agreement(app):
    attacker = client_at(app, "203.0.113.5")
    predictions = [predict(attacker) for _ in range(6)]
    claim = wrong_label(predictions[0])
    for prediction in predictions:
        assert answer(attacker, prediction, claim).status_code == 200
    items = app.test_client().get("/api/v1/review/queue", headers=AUTH).json["items"]
    assert len(items) == 6
    for item in items:
        assert item["agreeing_clients"] == 0  # six answers, one client: nobody else agrees
        assert item["disagreeing_clients"] == 0
        assert item["client_pending"] == 6  # where they came from: one client with six waiting
    assert len({item["answer_client"] for item in items}) == 1

    # Two other people who give the same answer do count, once each, however often they answer.
    for address, times in (("198.51.100.1", 3), ("198.51.100.2", 1)):
        someone = client_at(app, address)
        for _ in range(times):
            assert answer(someone, predict(someone), claim).status_code == 200
    items = app.test_client().get("/api/v1/review/queue", headers=AUTH).json["items"]
    attackers = [item for item in items if item["client_pending"] == 6]
    assert {item["agreeing_clients"] for item in attackers} == {2}
    # The page says it in those words.
    page = app.test_client().get("/static/review.js").get_data(as_text=True)
    assert "agreeing_clients" in page
    assert "agreeing_predictions" not in page


def test_one_client_may_have_only_its_share_of_the_queue_waiting(tmp_path, extractor, production_model):
    app = make_app(tmp_path, extractor, production_model, review_pending_per_client=3)
    flooder = client_at(app, "203.0.113.6")
    predictions = [predict(flooder) for _ in range(5)]
    statuses = [answer(flooder, p, wrong_label(p)).status_code for p in predictions]
    assert statuses == [200, 200, 200, 429, 429]
    refused = answer(flooder, predictions[3], wrong_label(predictions[3]))
    assert "already wait for review" in refused.json["error"]
    assert int(refused.headers["Retry-After"]) > 0
    # Nothing of the refused answers was kept as an answer; someone else still answers.
    rows = {row["id"]: row for row in app.extensions["fsdl_records"].predictions.rows()}
    assert rows[predictions[3]["prediction_id"]]["feedback_label"] is None
    other = client_at(app, "198.51.100.3")
    assert answer(other, predict(other), "sea").status_code == 200
    # Once the reviewer decides, the client may answer again.
    first = predictions[0]["prediction_id"]
    decided = app.test_client().post(
        "/api/v1/review/decisions", json={"decisions": [{"prediction_id": first, "action": "reject"}]}, headers=AUTH
    )
    assert decided.status_code == 200
    assert answer(flooder, predictions[3], wrong_label(predictions[3])).status_code == 200


@pytest.fixture
def records(tmp_path) -> Records:
    return open_for_test(tmp_path, review_queue_max=3, review_max_age_days=1.0)


def waiting(records: Records, name: str, when: float) -> str:
    prediction_id = name * 32
    records.predictions.record(
        prediction_id, PHOTO, "jpg", model_name="m", model_version="1", label="forest",
        probabilities={"forest": 0.9, "sea": 0.1}, latency_ms=1.0, client=f"client-{name}",
    )  # fmt: skip
    records.review.answer(prediction_id, False, "sea", client=f"client-{name}")
    with records.review.db.connect() as db:  # as if answered then
        db.execute("UPDATE predictions SET created_at = ?, feedback_at = ? WHERE id = ?", (when, when, prediction_id))
    return prediction_id


def test_the_oldest_waiting_answers_expire_with_their_uploads_past_the_queues_most_and_age(records):
    now = time.time()
    old = waiting(records, "a", now - 2 * 86400)  # older than the queue's age of a day
    kept = [waiting(records, name, now - 600 + i) for i, name in enumerate("bcd")]  # each answer enforces the limits
    assert records.review.summary(now)["expired"] == {"age": 1, "cap": 0}
    assert not records.predictions.upload_path(old, "jpg").exists()
    newest = waiting(records, "e", now)  # a fourth answer within the age: the oldest of the rest goes
    assert records.review.summary(now)["pending"] == 3
    expired = [row["id"] for row in records.predictions.rows() if row["review_state"] == "expired"]
    assert sorted(expired) == sorted([old, kept[0]])
    assert not records.predictions.upload_path(kept[0], "jpg").exists()
    assert all(records.predictions.upload_path(p, "jpg").exists() for p in (*kept[1:], newest))
    assert records.review.summary(now)["expired"] == {"age": 1, "cap": 1}
    assert records.review.enforce_limits(now) == {"age": 0, "cap": 0}  # nothing more to do


def test_expiries_are_counted_on_monitoring_and_in_metrics(tmp_path, extractor, production_model):
    app = make_app(tmp_path, extractor, production_model, review_queue_max=2)
    for i in range(4):
        someone = client_at(app, f"198.51.100.{10 + i}")
        assert answer(someone, predict(someone), "sea").status_code == 200
    client = app.test_client()
    stats = client.get("/api/v1/stats").json["review_queue"]
    assert stats["pending"] == 2
    assert stats["expired"] == {"age": 0, "cap": 2}
    metrics = client.get("/metrics").get_data(as_text=True)
    assert 'fsdl_review_queue_expired_total{reason="cap"} 2.0' in metrics
    assert 'id="review-expired"' in client.get("/monitoring").get_data(as_text=True)


def test_a_bulk_accept_takes_nothing_the_reviewer_has_not_seen(app):
    people = [client_at(app, f"198.51.100.{30 + i}") for i in range(3)]
    ids = []
    for person in people:
        prediction = predict(person)
        assert answer(person, prediction, wrong_label(prediction)).status_code == 200
        ids.append(prediction["prediction_id"])
    reviewer = app.test_client()
    assert reviewer.get(f"/review/image/{ids[0]}", headers=AUTH).status_code == 200  # only the first is shown
    response = reviewer.post(
        "/api/v1/review/decisions", json={"decisions": [{"prediction_id": i, "action": "accept"} for i in ids]},
        headers=AUTH,
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
        "/api/v1/review/decisions", json={"decisions": [{"prediction_id": ids[1], "action": "reject"}]}, headers=AUTH
    )
    assert rejected.status_code == 200
