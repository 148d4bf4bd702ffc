"""Prometheus metrics, the statistics behind the monitoring page, and the page itself."""

import io

import pytest
from prometheus_client.parser import text_string_to_metric_families

from fsdl_webapp.live_quality import summarise


def samples(client) -> dict:
    text = client.get("/metrics").get_data(as_text=True)
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def classify(client, photo):
    return client.post("/api/v1/predict", data={"image": (io.BytesIO(photo), "p.jpg")}).json


def test_metrics_count_predictions_latency_feedback_and_errors(client, photo):
    first, second = classify(client, photo), classify(client, photo)
    wrong = next(c for c in ("sea", "street") if c != first["label"])
    client.post("/api/v1/feedback", json={"prediction_id": first["prediction_id"], "correct": False, "label": wrong})
    client.post("/api/v1/feedback", json={"prediction_id": first["prediction_id"], "correct": False, "label": wrong})
    client.post("/api/v1/predict", data={})  # a 400
    values = samples(client)
    label = (("label", first["label"]), ("model_version", "1"))
    assert values[("fsdl_predictions_total", label)] == 2
    assert first["label"] == second["label"]
    assert values[("fsdl_prediction_seconds_count", (("model_version", "1"),))] == 2
    assert values[("fsdl_prediction_seconds_sum", (("model_version", "1"),))] > 0
    assert (
        values[("fsdl_feedback_total", (("correct", "false"), ("model_version", "1")))] == 1
    )  # the retry is not counted
    assert values[("fsdl_request_errors_total", (("endpoint", "/api/v1/predict"), ("status", "400")))] == 1


def test_error_metrics_are_labelled_by_route_not_by_raw_path(client):
    """Random URLs must not create a Prometheus series each (unbounded memory, a scraper's nightmare)."""
    for i in range(30):
        assert client.get(f"/api/v1/no-such-thing-{i}").status_code == 404
        assert client.post(f"/api/v1/predict/{i}").status_code == 404
    errors = {labels: value for (name, labels), value in samples(client).items() if name == "fsdl_request_errors_total"}
    assert errors == {(("endpoint", "unmatched"), ("status", "404")): 60}


def test_stats_report_accuracy_per_version_and_corrections(client, photo):
    confirmed, corrected, unanswered = classify(client, photo), classify(client, photo), classify(client, photo)
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


@pytest.mark.parametrize("bucket", ["0", "59", "abc", "9999999", "-5"])
def test_stats_reject_bad_buckets(client, bucket):
    response = client.get(f"/api/v1/stats?bucket_seconds={bucket}")
    assert response.status_code == 400
    assert "bucket_seconds" in response.json["error"]


def test_monitoring_page_renders(client):
    page = client.get("/monitoring").get_data(as_text=True)
    assert 'id="timeline-chart"' in page
    assert "monitoring.js" in page
    assert client.get("/static/monitoring.js").status_code == 200


def test_the_review_queue_is_measured_for_the_page_and_prometheus(client, photo):
    assert samples(client)[("fsdl_review_queue_pending", ())] == 0
    for _ in range(2):
        body = classify(client, photo)
        wrong = next(c for c in ("sea", "street") if c != body["label"])
        client.post("/api/v1/feedback", json={"prediction_id": body["prediction_id"], "correct": False, "label": wrong})
    values = samples(client)
    assert values[("fsdl_review_queue_pending", ())] == 2
    assert values[("fsdl_review_queue_oldest_seconds", ())] >= 0
    queue = client.get("/api/v1/stats").json["review_queue"]
    assert queue["pending"] == 2
    assert queue["oldest_age_seconds"] is not None


def test_randomly_sampled_reviews_give_an_accuracy_with_its_interval(tmp_path, extractor, production_model, registry):
    from tests.webapp.conftest import make_app
    from tests.webapp.test_api import predict, review

    app = make_app(tmp_path, extractor, production_model, review_sample_rate=1.0)
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
