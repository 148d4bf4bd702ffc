"""
# Drift watch

Every 30 minutes, reads whether the served scene model still sees images like those it was trained
on: the web app checks each window of recent predictions against the version's training sample in
the background and leaves its status beside the feedback (`FSDL_DATA_DIR/feedback/drift/`, the same
as its `/api/v1/drift`; README, "Monitoring"). Airflow never reaches the public web app itself.

When drift **persists** (the last `WEBAPP_DRIFT_PERSIST_CHECKS` checks all flagged it) and
`FSDL_RETRAIN_ON_DRIFT` is on, **publish** updates the `intel_scenes_drift` asset, which starts
`intel_scenes_parallel` with every candidate on the newest data (its scaler and PCA refitted, which a
feedback refit keeps). Off by default: retraining helps only once the training split holds examples
of the new inputs (reviewed feedback); the alert `ModelInputDrift` tells a person either way.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import dag, task
from airflow.sdk.exceptions import AirflowSkipException

from _tasks import SCENES_DRIFT_ASSET


@dag(
    schedule=timedelta(minutes=30),
    start_date=datetime(2024, 1, 1, tzinfo=UTC),
    catchup=False,
    tags=["intel-scenes", "monitoring", "flywheel"],
    default_args={
        "retries": 2,
        "retry_delay": timedelta(seconds=30),
        "execution_timeout": timedelta(minutes=5),
    },
    dagrun_timeout=timedelta(minutes=30),
    max_active_runs=1,
    doc_md=__doc__,
)
def drift_watch():
    @task
    def check_drift() -> dict:
        """Read the web app's drift status and decide (fsdl_lib.drift.retrain_decision)."""
        import logging
        import time
        from dataclasses import asdict

        from fsdl_lib.config import load_settings
        from fsdl_lib.drift import read_status, retrain_decision

        log = logging.getLogger(__name__)
        settings = load_settings()
        status = read_status(settings.drift_status_path)
        age = time.time() - (status.written_at or 0.0)
        if age > 3 * status.settings.interval_seconds:
            log.warning("the web app wrote its drift status %.0f minutes ago: is it still running?", age / 60)
        decision = retrain_decision(status, enabled=settings.retrain_on_drift)
        log.info("%s", decision.reason)
        return asdict(decision)

    @task(outlets=[SCENES_DRIFT_ASSET])
    def publish(decision: dict, *, outlet_events=None) -> dict:
        """Update the drift asset (a full retraining), only when the decision says so."""
        if not decision["retrain"]:
            raise AirflowSkipException(decision["reason"])
        outlet_events[SCENES_DRIFT_ASSET].extra = decision
        return decision

    publish(check_drift())


drift_watch()
