"""Monitoring: Prometheus metrics at /metrics, and a page with charts drawn from the feedback log."""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, render_template, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from fsdl_lib.classes import SCENE_CLASSES
from fsdl_webapp.services import get_drift_monitor, get_records

bp = Blueprint("monitoring", __name__)


class Metrics:
    """The app's Prometheus metrics, in a registry of its own (one per app, so tests stay apart)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.predictions = Counter(
            "fsdl_predictions", "Predictions served", ["label", "model_version"], registry=self.registry
        )
        self.latency = Histogram(
            "fsdl_prediction_seconds",
            "Time to decode, extract features and classify one upload",
            ["model_version"],
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
            registry=self.registry,
        )
        self.feedback = Counter(
            "fsdl_feedback", "Feedback received", ["model_version", "correct"], registry=self.registry
        )
        self.errors = Counter(
            "fsdl_request_errors", "API requests answered with an error", ["endpoint", "status"], registry=self.registry
        )


class ReviewQueueCollector:
    """The review queue's size, age and expiries, read from its records at each scrape."""

    def __init__(self, review: Any) -> None:
        self.review = review

    def collect(self) -> Any:
        summary = self.review.summary()
        yield GaugeMetricFamily("fsdl_review_queue_pending", "Answers waiting for review", value=summary["pending"])
        yield GaugeMetricFamily(
            "fsdl_review_queue_oldest_seconds",
            "Age of the oldest answer waiting for review (0 when none waits)",
            value=summary["oldest_age_seconds"] or 0.0,
        )
        expired = CounterMetricFamily(
            "fsdl_review_queue_expired", "Answers that expired unreviewed, by reason (age, cap)", labels=["reason"]
        )
        for reason, count in summary["expired"].items():
            expired.add_metric([reason], count)
        yield expired


class ServingCollector:
    """Whether a model is served, and the served version's latest drift check, at each scrape."""

    def __init__(self, service: Any, monitor: Any) -> None:
        self.service = service
        self.monitor = monitor

    def collect(self) -> Any:
        served = self.service.current
        yield GaugeMetricFamily("fsdl_model_served", "1 while a model version is served", value=int(served is not None))
        if served is None:
            return
        status = self.monitor.status(limit=self.monitor.persist_checks)
        checks = [c for c in status.checks if c["model_version"] == served.version]
        if not checks:
            return
        latest, report = checks[-1], checks[-1]["report"]
        gauges = {
            "fsdl_drift_p_value": ("p-value of the MMD test of the newest window's features", latest["p_value"]),
            "fsdl_drift_mmd": ("Unbiased MMD² of the newest window against the training reference", report["mmd"]),
            "fsdl_drift_detected": ("1 when the newest window's p-value is under the threshold", int(latest["drift"])),
            "fsdl_drift_persistent": (
                "1 when the last WEBAPP_DRIFT_PERSIST_CHECKS checks all flagged drift",
                int(status.persistent),
            ),
            "fsdl_drift_window_predictions": ("Predictions in the newest checked window", latest["n_window"]),
            "fsdl_drift_class_p_value": (
                "p-value of the chi-square test of predicted classes against the training prior",
                report["classes"]["p_value"],
            ),
            "fsdl_drift_class_total_variation": (
                "Total variation distance of predicted classes from the training prior",
                report["classes"]["total_variation"],
            ),
            "fsdl_drift_confidence_mean": ("Mean top probability in the newest window", report["confidence"]["mean"]),
            "fsdl_drift_checked_timestamp_seconds": ("When the newest window was checked", latest["checked_at"]),
        }
        for name, (documentation, value) in gauges.items():
            gauge = GaugeMetricFamily(name, documentation, labels=["model_version"])
            gauge.add_metric([served.version], float(value))
            yield gauge
        yield GaugeMetricFamily("fsdl_drift_alpha", "Threshold of the drift p-value", value=self.monitor.alpha)


def init_app(app: Any) -> None:
    metrics = Metrics()
    metrics.registry.register(ReviewQueueCollector(app.extensions["fsdl_records"].review))
    metrics.registry.register(ServingCollector(app.extensions["fsdl_model"], app.extensions["fsdl_drift"]))
    app.extensions["fsdl_metrics"] = metrics

    @app.after_request
    def count_errors(response: Response) -> Response:
        if response.status_code >= 400 and request.path.startswith("/api/"):
            # Labelled by the matched route, never the raw path: random URLs must not create series.
            endpoint = request.url_rule.rule if request.url_rule is not None else "unmatched"
            metrics.errors.labels(endpoint, str(response.status_code)).inc()
        return response


def get_metrics() -> Metrics:
    return current_app.extensions["fsdl_metrics"]


@bp.get("/metrics")
def metrics() -> Response:
    return Response(generate_latest(get_metrics().registry), mimetype=CONTENT_TYPE_LATEST)


def wilson_interval(correct: int, total: int, z: float = 1.96) -> tuple[float, float] | None:
    """The 95 % Wilson score interval of a proportion (sensible for small counts and 0 or 1)."""
    if total == 0:
        return None
    p = correct / total
    centre = (p + z * z / (2 * total)) / (1 + z * z / total)
    half = z * ((p * (1 - p) / total + z * z / (4 * total * total)) ** 0.5) / (1 + z * z / total)
    return max(0.0, centre - half), min(1.0, centre + half)


def summarise(
    rows: list[dict[str, Any]], now: float, bucket_seconds: int, sampled: dict[str, dict[str, int]] | None = None
) -> dict[str, Any]:
    """Predictions and feedback over time, live accuracy per model version, corrections matrix.

    Two accuracies per version: of the answers users chose to give (biased: people answer more
    often when the model is wrong, or when asked because it was unsure) and of the predictions
    drawn at random for review (``sampled``: unbiased, with its 95 % interval, once reviewed).
    """
    sampled = sampled or {}
    buckets: dict[int, dict[str, int]] = {}
    versions: dict[str, dict[str, int]] = {}
    corrections = {p: dict.fromkeys(SCENE_CLASSES, 0) for p in SCENE_CLASSES}
    for row in rows:
        start = int(row["created_at"] // bucket_seconds * bucket_seconds)
        bucket = buckets.setdefault(start, {"predictions": 0, "feedback": 0})
        bucket["predictions"] += 1
        version = versions.setdefault(row["model_version"], {"predictions": 0, "feedback": 0, "correct": 0})
        version["predictions"] += 1
        if row["feedback_label"] is not None:
            bucket["feedback"] += 1
            version["feedback"] += 1
            version["correct"] += int(bool(row["feedback_correct"]))
            if not row["feedback_correct"]:
                corrections[row["predicted_label"]][row["feedback_label"]] += 1
    return {
        "generated_at": now,
        "bucket_seconds": bucket_seconds,
        "timeline": [{"start": start, **counts} for start, counts in sorted(buckets.items())],
        "versions": [
            {
                "model_version": version,
                **counts,
                "accuracy": counts["correct"] / counts["feedback"] if counts["feedback"] else None,
                **sampled_estimate(sampled.get(version)),
            }
            for version, counts in sorted(versions.items(), key=lambda kv: int(kv[0]) if kv[0].isdigit() else 0)
        ],
        "corrections": [
            {"predicted": predicted, "corrected": corrected, "count": count}
            for predicted, row in corrections.items()
            for corrected, count in row.items()
            if count
        ],
    }


def sampled_estimate(counts: dict[str, int] | None) -> dict[str, Any]:
    counts = counts or {"sampled": 0, "reviewed": 0, "correct": 0}
    interval = wilson_interval(counts["correct"], counts["reviewed"])
    return {
        "sampled": counts["sampled"],
        "sampled_reviewed": counts["reviewed"],
        "sampled_correct": counts["correct"],
        "sampled_accuracy": counts["correct"] / counts["reviewed"] if counts["reviewed"] else None,
        "sampled_accuracy_interval": list(interval) if interval else None,
    }


@bp.get("/api/v1/stats")
def stats():
    bucket = request.args.get("bucket_seconds", "3600")
    if not bucket.isdigit() or not 60 <= int(bucket) <= 86400 * 7:
        return jsonify(error="bucket_seconds must be a whole number of seconds between 60 and 604800"), 400
    records = get_records()
    summary = summarise(records.predictions.rows(), time.time(), int(bucket), records.predictions.sampled_accuracy())
    return jsonify({**summary, "review_queue": records.review.summary()})


@bp.get("/api/v1/drift")
def drift():
    return jsonify(get_drift_monitor().status().as_dict())


@bp.get("/monitoring")
def page():
    return render_template("monitoring.html", classes=SCENE_CLASSES)
