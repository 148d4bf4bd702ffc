"""
# Drift watch

Every 30 minutes, asks the web app whether the served scene model still sees images like those it
was trained on (`/api/v1/drift`: the web app checks each window of recent predictions against the
version's training sample in the background; README, "Monitoring").

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
        """Read the web app's drift checks and decide (fsdl_lib.drift.retrain_decision)."""
        import logging
        from dataclasses import asdict

        import requests

        from fsdl_lib.config import load_settings
        from fsdl_lib.drift import retrain_decision

        settings = load_settings()
        url = f"{settings.webapp_api_url.rstrip('/')}/api/v1/drift"
        try:
            response = requests.get(url, timeout=30)
            response.raise_for_status()
        except requests.RequestException as exc:
            raise RuntimeError(f"cannot read the drift checks at {url}: {exc}; is the web app running?") from exc
        decision = retrain_decision(response.json(), enabled=settings.retrain_on_drift)
        logging.getLogger(__name__).info("%s", decision.reason)
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
