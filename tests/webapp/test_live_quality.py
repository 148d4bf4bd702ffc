"""Live quality from the prediction log (fsdl_webapp.live_quality): predictions and answers over
time, and the two accuracies per version (of the answers people chose to give, and of the
predictions sampled at random for review)."""

from __future__ import annotations

import pytest

from fsdl_webapp.live_quality import summarise
from tests.webapp.conftest import make_app, predict, review


def row(created, version, predicted, feedback=None, correct=None):
    return {"created_at": created, "model_version": version, "predicted_label": predicted,
            "feedback_label": feedback, "feedback_correct": correct}  # fmt: skip


def test_summarise_buckets_versions_in_order():
    rows = [
        row(0, "1", "sea", "sea", 1),
        row(10, "1", "sea", "glacier", 0),
        row(3700, "2", "forest", "forest", 1),
        row(3800, "10", "forest"),
    ]
    out = summarise(rows, now=4000, bucket_seconds=3600)
    assert out["timeline"] == [
        {"start": 0, "predictions": 2, "feedback": 2},
        {"start": 3600, "predictions": 2, "feedback": 1},
    ]
    assert [(v["model_version"], v["accuracy"]) for v in out["versions"]] == [("1", 0.5), ("2", 1.0), ("10", None)]
    assert out["corrections"] == [{"predicted": "sea", "corrected": "glacier", "count": 1}]


def test_stats_report_accuracy_per_version_and_corrections(client, photo):
    confirmed, corrected, unanswered = predict(client, photo), predict(client, photo), predict(client, photo)
    assert unanswered["prediction_id"]
    predicted = confirmed["label"]
    wrong = next(c for c in ("glacier", "mountain") if c != predicted)
    client.post(
        "/api/v1/feedback", json={"prediction_id": confirmed["prediction_id"], "correct": True, "label": predicted}
    )
    client.post(
        "/api/v1/feedback", json={"prediction_id": corrected["prediction_id"], "correct": False, "label": wrong}
    )
    stats = client.get("/api/v1/stats?bucket_seconds=300").json
    (version,) = stats["versions"]
    assert {k: version[k] for k in ("model_version", "predictions", "feedback", "correct", "accuracy")} == {
        "model_version": "1", "predictions": 3, "feedback": 2, "correct": 1, "accuracy": 0.5,
    }  # fmt: skip
    assert (version["sampled"], version["sampled_accuracy"], version["sampled_accuracy_interval"]) == (0, None, None)
    assert stats["corrections"] == [{"predicted": predicted, "corrected": wrong, "count": 1}]
    assert sum(t["predictions"] for t in stats["timeline"]) == 3
    assert sum(t["feedback"] for t in stats["timeline"]) == 2


def test_randomly_sampled_reviews_give_an_accuracy_with_its_interval(tmp_path, extractor, production_model, registry):
    app = make_app(tmp_path, production_model, review_sample_rate=1.0)
    client = app.test_client()
    photos = sorted((registry.root / "test").glob("*/*.jpg"))[:6]
    bodies = [predict(client, p.read_bytes()) for p in photos]
    wrong = next(c for c in ("sea", "street") if c != bodies[0]["label"])
    # The reviewer confirms four, corrects one and rejects one (an unusable image: not counted).
    decisions = [{"prediction_id": b["prediction_id"], "action": "accept"} for b in bodies[1:5]]
    decisions += [{"prediction_id": bodies[0]["prediction_id"], "action": "relabel", "label": wrong},
                  {"prediction_id": bodies[5]["prediction_id"], "action": "reject"}]  # fmt: skip
    assert review(client, decisions).status_code == 200
    (version,) = client.get("/api/v1/stats").json["versions"]
    assert (version["sampled"], version["sampled_reviewed"], version["sampled_correct"]) == (6, 5, 4)
    assert version["sampled_accuracy"] == pytest.approx(0.8)
    low, high = version["sampled_accuracy_interval"]
    assert 0.3 < low < 0.8 < high <= 1.0
    assert version["accuracy"] is None  # nobody answered: the biased estimate has nothing to say
