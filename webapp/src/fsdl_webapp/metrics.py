"""Prometheus metrics at /metrics: the app's own counters and histograms, and collectors that read
the review queue, the served version and the drift checks when Prometheus scrapes."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

bp = Blueprint("metrics", __name__)


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
        self.shed = Counter(
            "fsdl_webapp_requests_shed",
            "Predictions refused at once with 503 because the worker had as many in flight as its latency budget holds",
            registry=self.registry,
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
    """Whether a model is served, the work in flight, and the served version's latest drift check, at each scrape."""

    def __init__(self, service: Any, monitor: Any) -> None:
        self.service = service
        self.monitor = monitor

    def collect(self) -> Any:
        served = self.service.current
        yield GaugeMetricFamily("fsdl_model_served", "1 while a model version is served", value=int(served is not None))
        admission = self.service.admission
        yield GaugeMetricFamily(
            "fsdl_webapp_in_flight", "Predictions this worker is working on", value=admission.in_flight
        )
        yield GaugeMetricFamily(
            "fsdl_webapp_admission_depth",
            "Predictions this worker admits at once (its latency budget over its service time)",
            value=admission.depth,
        )
        yield GaugeMetricFamily(
            "fsdl_webapp_service_seconds",
            "This worker's running average of one inference",
            value=admission.service_seconds,
        )
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
