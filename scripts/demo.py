#!/usr/bin/env python3
"""`make demo`: one full turn of the data flywheel on the offline sample, in a workspace of its own.

Starts the embedded platform (Airflow, MLflow, web app) on free ports with data and state under
.demo/, trains, promotes, sends five uploads with feedback through the web app, syncs them into the
training data, lets the asset retrain, promotes the new version and shows it served, then prints
what happened and where to look. With --keep the platform stays up until Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from fsdl_lib.flywheel import Flywheel
from fsdl_lib.platform_client import AirflowClient, WebappClient, free_port, local_logins, wait_for_http

ROOT = Path(__file__).resolve().parent.parent


def wait_for(url: str, proc: subprocess.Popen[bytes], timeout: float = 240) -> None:
    try:
        wait_for_http(url, timeout, proc)
    except (RuntimeError, TimeoutError) as exc:
        sys.exit(f"{exc}; see {ROOT / '.demo' / 'platform.log'}")


def describe(version: dict) -> str:
    return (
        f"version {version['version']}: {version['candidate']}, validation F1 {version['val_f1']:.3f}, "
        f"test F1 {version['test_f1']:.3f}, dataset {version['dataset_version'][:12]}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keep", action="store_true", help="keep the platform running afterwards, until Ctrl-C")
    parser.add_argument("--image-size", type=int, default=224, help="ResNet50 input size (smaller is faster)")
    args = parser.parse_args()

    workspace = ROOT / ".demo"
    shutil.rmtree(workspace, ignore_errors=True)
    workspace.mkdir()
    ports = {name: free_port() for name in ("AIRFLOW_PORT", "MLFLOW_PORT", "WEBAPP_PORT")}
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FSDL_", "AIRFLOW", "MLFLOW_", "WEBAPP_"))}
    env.update({k: str(v) for k, v in ports.items()})
    env.update(
        FSDL_DATA_DIR=str(workspace / "data"),
        FSDL_STORAGE_DIR=str(workspace / "storage"),
        FSDL_IMAGE_SIZE=str(args.image_size),
        WEBAPP_MODEL_POLL_SECONDS="2",
    )
    airflow_url = f"http://127.0.0.1:{ports['AIRFLOW_PORT']}"
    mlflow_url = f"http://127.0.0.1:{ports['MLFLOW_PORT']}"
    webapp_url = f"http://127.0.0.1:{ports['WEBAPP_PORT']}"
    print(f"Starting the platform in {workspace} (log: {workspace / 'platform.log'}) ...", flush=True)
    with (workspace / "platform.log").open("wb") as log:
        platform = subprocess.Popen(
            [str(ROOT / "scripts" / "up.sh")], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        for url in (f"{mlflow_url}/health", f"{airflow_url}/api/v2/monitor/health", f"{webapp_url}/healthz"):
            wait_for(url, platform)
        logins = local_logins(workspace / "storage")  # generated on this first start
        os.environ.update(
            MLFLOW_TRACKING_URI=mlflow_url,
            MLFLOW_TRACKING_USERNAME="admin",  # the demo plays the person who promotes
            MLFLOW_TRACKING_PASSWORD=logins["MLFLOW_AUTH_ADMIN_PASSWORD"],
        )
        airflow = AirflowClient(airflow_url, "admin", logins["AIRFLOW_ADMIN_PASSWORD"])
        airflow.login()
        airflow.wait_for_dags({"intel_scenes_parallel", "feedback_sync"}, 180)
        photos = sorted((ROOT / "samples" / "intel_scenes").glob("*/*.jpg"))
        random.Random(7).shuffle(photos)
        wheel = Flywheel(airflow, WebappClient(webapp_url), "intel-scenes", say=lambda s: print(f"  {s}", flush=True))
        print("Turning the flywheel:", flush=True)
        report = wheel.turn(photos)
        first, second = report.first, report.second
        print(f"""
What happened
  {describe(first)}
  feedback: {len(report.feedback)} uploads through the web app, {report.corrections} corrected by the "user"
  {describe(second)} ({second['run_type']} run)
  feedback to new version served: {report.timings['feedback to new version served']:.0f} s

Where to look
  Airflow  {airflow_url}/dags/intel_scenes_parallel   the asset-triggered run
  MLflow   {mlflow_url}/#/models/intel-scenes          both versions; each run's metrics, confusion matrix, manifests
  Web app  {webapp_url}/monitoring                      predictions, feedback and live accuracy
  Logins   Airflow admin / {logins["AIRFLOW_ADMIN_PASSWORD"]}, MLflow admin / {logins["MLFLOW_AUTH_ADMIN_PASSWORD"]}
           (generated for this workspace; kept in {workspace / "storage" / "airflow" / "secrets.env"})
""", flush=True)  # fmt: skip
        if args.keep:
            print("The platform keeps running; Ctrl-C stops it.", flush=True)
            platform.wait()
    except KeyboardInterrupt:
        pass
    finally:
        if platform.poll() is None:
            os.killpg(platform.pid, signal.SIGINT)
            platform.wait(timeout=60)


if __name__ == "__main__":
    main()
