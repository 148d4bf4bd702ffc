#!/usr/bin/env python3
"""`make demo`: one full turn of the data flywheel on the offline sample, in a workspace of its own.

Starts the embedded platform (Airflow, MLflow, web app) on free ports with data and state under
.demo/, trains, promotes, sends five uploads with feedback through the web app, syncs them into the
training data, lets the asset retrain, promotes the new version and shows it served, then prints
what happened and where to look. With --keep the platform stays up until Ctrl-C. Ctrl-C, SIGTERM or
a closed terminal (SIGHUP) stops everything it started, at any step.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import sys
from pathlib import Path
from types import FrameType

from fsdl_tools.flywheel import Flywheel
from fsdl_tools.launcher import LocalPlatform
from fsdl_tools.processes import processes

ROOT = Path(__file__).resolve().parent.parent


def describe(version: dict) -> str:
    return (
        f"version {version['version']}: {version['candidate']}, validation F1 {version['val_f1']:.3f}, "
        f"test F1 {version['test_f1']:.3f}, dataset {version['dataset_version'][:12]}"
    )


def stop_on_signals() -> None:
    """Ctrl-C, SIGTERM and SIGHUP end the demo through the clean-up that stops the platform. SIGINT too
    is set here, not left to Python: a process started in the background by a shell (`make demo &` in a
    script, a CI job) inherits SIGINT ignored, and Python then leaves it ignored."""

    def interrupt(signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, interrupt)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keep", action="store_true", help="keep the platform running afterwards, until Ctrl-C")
    parser.add_argument("--image-size", type=int, default=224, help="ResNet50 input size (smaller is faster)")
    parser.add_argument("--workspace", type=Path, default=ROOT / ".demo", help="its data and state (emptied first)")
    args = parser.parse_args()
    stop_on_signals()

    workspace = args.workspace.resolve()
    if processes([workspace / "storage"]):
        sys.exit(f"A demo is still running in {workspace}; stop it first (make down), then run make demo again.")
    shutil.rmtree(workspace, ignore_errors=True)
    platform = LocalPlatform(
        workspace, settings={"FSDL_IMAGE_SIZE": str(args.image_size), "WEBAPP_MODEL_POLL_SECONDS": "2"}
    )
    print(f"Starting the platform in {workspace} (log: {platform.log}) ...", flush=True)
    try:
        platform.start()
        try:
            platform.wait_healthy()
        except RuntimeError as exc:
            sys.exit(f"{str(exc).splitlines()[0]}; see {platform.log}")
        logins = platform.logins  # generated on this first start
        os.environ.update(platform.mlflow_env())  # the demo plays the person who promotes
        airflow = platform.airflow_client()
        airflow.wait_for_dags({"intel_scenes_parallel", "feedback_sync"}, 180)
        photos = sorted((ROOT / "samples" / "intel_scenes").glob("*/*.jpg"))
        random.Random(7).shuffle(photos)
        wheel = Flywheel(airflow, platform.webapp_client(), "intel-scenes", say=lambda s: print(f"  {s}", flush=True))
        print("Turning the flywheel:", flush=True)
        report = wheel.turn(photos)
        first, second = report.first, report.second
        print(f"""
What happened
  {describe(first)}
  feedback: {len(report.feedback)} uploads through the web app, {report.corrections} corrected by the "user",
            all accepted by the "reviewer" through the review API
  {describe(second)} ({second['run_type']} run)
  feedback to new version served: {report.timings['feedback to new version served']:.0f} s

Where to look
  Airflow  {platform.airflow}/dags/intel_scenes_parallel   the asset-triggered run
  MLflow   {platform.mlflow}/#/models/intel-scenes   both versions; each run's metrics, confusion matrix, manifests
  Web app  {platform.webapp}/monitoring   predictions, feedback, live accuracy, the review queue
           {platform.webapp}/review   the review page and its decision log
  Logins   Airflow admin / {logins["AIRFLOW_ADMIN_PASSWORD"]}, MLflow admin / {logins["MLFLOW_AUTH_ADMIN_PASSWORD"]},
           reviewer / {logins["WEBAPP_REVIEWER_PASSWORD"]}
           (generated for this workspace; kept in {workspace / "storage" / "airflow" / "secrets.env"})
""", flush=True)  # fmt: skip
        if args.keep:
            print("The platform keeps running; Ctrl-C stops it.", flush=True)
            platform.procs["platform"].wait()
    except KeyboardInterrupt:
        pass
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)  # the stop runs to its end
        platform.stop()


if __name__ == "__main__":
    main()
