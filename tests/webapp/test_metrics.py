"""Prometheus metrics at /metrics (fsdl_webapp.metrics): the app's counters and histograms, and the
collectors that read the review queue when Prometheus scrapes."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from tests.webapp.conftest import answer, client_at, make_app, predict


def samples(client) -> dict:
    text = client.get("/metrics").get_data(as_text=True)
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_metrics_count_predictions_latency_feedback_and_errors(client, photo):
    first, second = predict(client, photo), predict(client, photo)
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


def test_the_review_queue_is_measured_for_the_page_and_prometheus(client, photo):
    assert samples(client)[("fsdl_review_queue_pending", ())] == 0
    for _ in range(2):
        body = predict(client, photo)
        wrong = next(c for c in ("sea", "street") if c != body["label"])
        client.post("/api/v1/feedback", json={"prediction_id": body["prediction_id"], "correct": False, "label": wrong})
    values = samples(client)
    assert values[("fsdl_review_queue_pending", ())] == 2
    assert values[("fsdl_review_queue_oldest_seconds", ())] >= 0
    queue = client.get("/api/v1/stats").json["review_queue"]
    assert queue["pending"] == 2
    assert queue["oldest_age_seconds"] is not None


def test_expiries_are_counted_on_monitoring_and_in_metrics(tmp_path, extractor, production_model):
    app = make_app(tmp_path, production_model, review_queue_max=2)
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
