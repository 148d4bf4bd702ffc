"""
# Feedback sync

Moves the images whose labels were accepted in the web app (`data/feedback/intel_scenes/<class>/`)
into the training split (`data/raw/intel_scenes/train/<class>/`) with `fsdl_lib.merge`: regular
image files only, test images and label conflicts refused, one atomic rename per file, a manifest
per run under `data/raw/intel_scenes/feedback_merges/`. Killed and retried, it loses nothing and
counts nothing twice.

When anything was merged, **publish** updates the `intel_scenes_train` asset, and the asset
schedules `intel_scenes_parallel`: feedback leads to a new challenger with no cron in between.
Runs every 30 minutes; trigger it by hand to sync now.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import dag, task
from airflow.sdk.exceptions import AirflowSkipException

from _tasks import SCENES_TRAIN_ASSET, current_task


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
    @task
    def merge_feedback() -> dict:
        """Merge accepted feedback into the training split (a retry continues the same manifest)."""
        from fsdl_lib.config import load_settings
        from fsdl_lib.merge import merge_feedback as merge

        return merge(load_settings(), current_task().run_id).as_dict()

    @task(outlets=[SCENES_TRAIN_ASSET])
    def publish(summary: dict, *, outlet_events=None) -> dict:
        """Update the training-data asset, only when the merge added something."""
        if summary["merged"] == 0:
            raise AirflowSkipException(
                f"nothing new to train on ({summary['duplicates']} duplicates, {summary['conflicts']} conflicts)"
            )
        outlet_events[SCENES_TRAIN_ASSET].extra = {k: summary[k] for k in ("merged", "manifest", "run_id")}
        return summary

    publish(merge_feedback())


feedback_sync()
