"""The flywheel end to end on the distributed stack, every step asserted, timings printed."""

from __future__ import annotations

import random
import sqlite3

import pytest
from mlflow import MlflowClient

from fsdl_lib import storage
from fsdl_tools.flywheel import Flywheel
from tests.conftest import SAMPLE_DIR

pytestmark = pytest.mark.slow


def test_feedback_closes_the_loop(stack, capsys, as_mlflow_admin):
    tracking_uri = stack.mlflow
    airflow = stack.airflow_client()
    webapp = stack.webapp_client()
    photos = sorted(SAMPLE_DIR.glob("*/*.jpg"))
    random.Random(3).shuffle(photos)

    wheel = Flywheel(airflow, webapp, "intel-scenes", say=print)
    report = wheel.turn(photos)
    first, second = report.first, report.second

    # The first model was promoted and served; feedback went through the web app and its review.
    assert len(report.feedback) == 5
    assert report.corrections >= 1
    assert all(f["review_state"] == "accepted" for f in report.feedback)
    assert all(f["stored"].startswith(f"{f['label']}/") for f in report.feedback)
    with sqlite3.connect(stack.workspace / "storage" / "webapp" / "feedback.db") as db:
        logged = db.execute(
            "SELECT count(*) FROM predictions WHERE feedback_label IS NOT NULL AND model_version = ?",
            (first["version"],),
        ).fetchone()[0]
    assert logged == 5

    # The sync merged them and published the asset, which scheduled the training DAG.
    assert report.sync_run["tasks"] == {"merge_feedback": "success", "publish": "success"}
    assert second["run_type"] == "asset_triggered"
    # New feedback refits the served candidate from its solution; the first model came from the full grid.
    assert first["training_path"] == "full_grid"
    assert (second["training_path"], second["candidate"]) == ("refit", first["candidate"]), second["training_reason"]
    assert second["warm_start_version"] == first["version"]
    assert int(second["version"]) > int(first["version"])
    assert second["dataset_version"] != first["dataset_version"]
    manifest = wheel.manifest(second["run_id"])
    for item in report.feedback:
        sha = item["stored"].split("/")[1]
        assert f"{item['label']}/{sha}" in manifest, f"{item['stored']} is not in the new training manifest"
    assert storage.files(stack.store_location("s3://fsdl-uploads/feedback/intel_scenes")) == {}  # all moved

    # The second promotion was served without a restart of the web app.
    assert webapp.served_version() == second["version"]
    assert stack.procs["webapp"].poll() is None
    versions = MlflowClient(tracking_uri).get_model_version_by_alias("intel-scenes", "production")
    assert versions.version == second["version"]

    with capsys.disabled():
        print("\nflywheel timings on the distributed stack:")
        for step, seconds in report.timings.items():
            print(f"  {step:40s} {seconds:7.1f} s")
