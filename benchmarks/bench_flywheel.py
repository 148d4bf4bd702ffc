#!/usr/bin/env python3
"""Flywheel turnaround on the distributed stack with 1000 training images, measured in one run.

Builds a training split of 1000 distinct images (the sample photos and mirrored, rotated and
cropped variants) plus the 30 seeded test photos, starts `make up-distributed`'s stack on free
ports in a scratch folder (Postgres and Redis on 127.0.0.1 must be running), trains and promotes a
first model, then times: five uploads with feedback → sync → asset-triggered training (only the new
images are extracted) → promotion → the new version served. Target: <= 2 minutes on 2 cores.

    .venv/bin/python benchmarks/bench_flywheel.py [--train-images 1000] [--image-size 224]
"""

from __future__ import annotations

import argparse
import os
import random
import secrets
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image, ImageOps

from fsdl_lib.classes import SCENE_CLASSES
from fsdl_lib.flywheel import Flywheel, FlywheelReport
from fsdl_lib.platform_client import AirflowClient, WebappClient, free_port, local_logins, wait_for_http
from fsdl_lib.seeding import seed_scenes

ROOT = Path(__file__).resolve().parent.parent


def variants(image: Image.Image) -> list[Image.Image]:
    """14 distinct new images from one photo; never the plain mirror image (the demo feedback uses it)."""
    out = []
    for flipped in (False, True):
        base = ImageOps.mirror(image) if flipped else image
        for angle in (0, 90, 180, 270):
            rotated = base.rotate(angle)
            if angle:
                out.append(rotated)
            out.append(rotated.crop((8, 8, 142, 142)).resize((150, 150)))
    return out


def build_train(split: Path, count: int) -> None:
    per_class = count // len(SCENE_CLASSES)
    for label in SCENE_CLASSES:
        folder = split / label
        made = len(list(folder.glob("*.jpg")))
        for photo in sorted(folder.glob("*.jpg")):  # the seeded training photos only: none of the test split
            for k, variant in enumerate(variants(Image.open(photo).convert("RGB"))):
                if made >= per_class:
                    break
                variant.save(folder / f"{photo.stem}-v{k}.jpg", quality=90)
                made += 1


def prepare_scenes(dataset_dir: Path, count: int) -> int:
    """Seed train/test from the sample photos, grow train to about ``count`` images; return its size."""
    seed_scenes(ROOT / "samples" / "intel_scenes", dataset_dir)
    build_train(dataset_dir / "train", count)
    return len(list((dataset_dir / "train").glob("*/*.jpg")))


def photos() -> list[Path]:
    """The photos users upload in every flywheel benchmark, in one seeded order."""
    found = sorted((ROOT / "samples" / "intel_scenes").glob("*/*.jpg"))
    random.Random(11).shuffle(found)
    return found


def say(step: str) -> None:
    print(f"  {step}", flush=True)


def turn_distributed(tmp: Path, train_images: int, image_size: int) -> FlywheelReport:
    """One flywheel turn on `make up-distributed`'s stack in ``tmp`` (free ports, its own database)."""
    n_train = prepare_scenes(tmp / "data" / "raw" / "intel_scenes", train_images)
    ports = {name: free_port() for name in ("AIRFLOW_PORT", "MLFLOW_PORT", "WEBAPP_PORT", "FLOWER_PORT")}
    db = f"fsdl_bench_{secrets.token_hex(4)}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FSDL_", "AIRFLOW", "MLFLOW_", "WEBAPP_"))}
    env.update({k: str(v) for k, v in ports.items()})
    env.update(
        FSDL_MODE="distributed",
        FSDL_DATA_DIR=str(tmp / "data"),
        FSDL_STORAGE_DIR=str(tmp / "storage"),
        FSDL_POSTGRES_URL=f"postgresql+psycopg2://postgres@127.0.0.1:5432/{db}",
        FSDL_REDIS_URL="redis://127.0.0.1:6379/14",
        FSDL_OFFLINE_WEIGHTS="1",
        FSDL_IMAGE_SIZE=str(image_size),
        WEBAPP_MODEL_POLL_SECONDS="2",
        AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT=str(free_port()),
    )
    log = (tmp / "platform.log").open("wb")
    platform = subprocess.Popen([str(ROOT / "scripts" / "up.sh")], env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)  # fmt: skip
    try:
        base = "http://127.0.0.1"
        for url in (f"{base}:{ports['MLFLOW_PORT']}/health", f"{base}:{ports['AIRFLOW_PORT']}/api/v2/monitor/health",
                    f"{base}:{ports['WEBAPP_PORT']}/healthz"):  # fmt: skip
            wait_for_http(url, 240, platform)
        logins = local_logins(tmp / "storage")
        os.environ.update(
            MLFLOW_TRACKING_URI=f"{base}:{ports['MLFLOW_PORT']}",
            MLFLOW_TRACKING_USERNAME="admin",
            MLFLOW_TRACKING_PASSWORD=logins["MLFLOW_AUTH_ADMIN_PASSWORD"],
        )
        airflow = AirflowClient(f"{base}:{ports['AIRFLOW_PORT']}", "admin", logins["AIRFLOW_ADMIN_PASSWORD"])
        airflow.login()
        airflow.wait_for_dags({"intel_scenes_parallel", "feedback_sync"}, 180)
        wheel = Flywheel(airflow, WebappClient(f"{base}:{ports['WEBAPP_PORT']}"), "intel-scenes", say=say, timeout=3600)
        print(f"{n_train} training images, {image_size}x{image_size}, distributed stack:", flush=True)
        return wheel.turn(photos())
    except Exception:
        print((tmp / "platform.log").read_text(errors="replace")[-4000:], file=sys.stderr)
        raise
    finally:
        if platform.poll() is None:
            os.killpg(platform.pid, signal.SIGINT)
            platform.wait(timeout=90)
        subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-c", f"DROP DATABASE IF EXISTS {db}"],
                       capture_output=True, check=False)  # fmt: skip


def turnaround(report: FlywheelReport) -> float:
    """Feedback POSTs → new version served."""
    return report.timings["feedback to new version served"] + report.timings["five uploads with feedback"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train-images", type=int, default=1000)
    parser.add_argument("--image-size", type=int, default=224)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fsdl-flywheel-") as tmp_name:
        report = turn_distributed(Path(tmp_name), args.train_images, args.image_size)
        seconds = turnaround(report)
        print(f"\nfeedback POSTs -> new version served: {seconds:.1f} s = {seconds / 120:.2f} of the "
              f"2-minute target (first training, every image extracted: "
              f"{report.timings['train the first model']:.1f} s)")  # fmt: skip


if __name__ == "__main__":
    main()
