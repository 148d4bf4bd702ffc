"""
# Feedback sync

Moves the images that users labelled in the web app (`data/feedback/intel_scenes/<class>/`) into
the training split (`data/raw/intel_scenes/train/<class>/`) with `scripts/sync_feedback.sh`:
one atomic rename per file, duplicates by content hash skipped, a manifest per run under
`data/raw/intel_scenes/feedback_merges/`.

When anything was merged, **publish** updates the `intel_scenes_train` asset, and the asset
schedules `intel_scenes_parallel`: feedback leads to a new challenger with no cron in between.
Runs every 30 minutes; trigger it by hand to sync now.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import dag, task
from airflow.sdk.exceptions import AirflowSkipException

from _tasks import SCENES_TRAIN_ASSET

SYNC_SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "sync_feedback.sh"


@dag(
    schedule=timedelta(minutes=30),
    start_date=datetime(2024, 1, 1, tzinfo=UTC),
    catchup=False,
    tags=["intel-scenes", "feedback", "flywheel"],
    default_args={
        "retries": 2,
        "retry_delay": timedelta(seconds=15),
        "execution_timeout": timedelta(minutes=20),
    },
    dagrun_timeout=timedelta(hours=1),
    max_active_runs=1,
    doc_md=__doc__,
)
def feedback_sync():
    sync = BashOperator(
        task_id="sync_feedback",
        # The trailing argument keeps Airflow from reading the .sh path as a template file.
        bash_command=f"bash {SYNC_SCRIPT} {{{{ run_id | replace(':', '_') | replace('+', '_') }}}}",
        append_env=True,
    )

    @task(outlets=[SCENES_TRAIN_ASSET])
    def publish(summary: str, *, outlet_events=None) -> dict:
        """Update the training-data asset, only when the sync merged something."""
        result = json.loads(summary)
        if result["merged"] == 0:
            raise AirflowSkipException(f"nothing new to train on ({result['duplicates']} duplicates skipped)")
        outlet_events[SCENES_TRAIN_ASSET].extra = result
        return result

    publish(sync.output)


feedback_sync()
