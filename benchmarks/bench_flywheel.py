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
import sys
import tempfile
from pathlib import Path

from PIL import Image, ImageOps

from fsdl_lib.classes import SCENE_CLASSES
from fsdl_lib.seeding import seed_scenes
from fsdl_tools.flywheel import Flywheel, FlywheelReport
from fsdl_tools.launcher import LocalPlatform

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
    settings = {"FSDL_OFFLINE_WEIGHTS": "1", "FSDL_IMAGE_SIZE": str(image_size), "WEBAPP_MODEL_POLL_SECONDS": "2"}
    with LocalPlatform(tmp, mode="distributed", settings=settings) as platform:
        platform.start()
        try:
            platform.wait_healthy()
            os.environ.update(platform.mlflow_env())
            airflow = platform.airflow_client()
            airflow.wait_for_dags({"intel_scenes_parallel", "feedback_sync"}, 180)
            wheel = Flywheel(airflow, platform.webapp_client(), "intel-scenes", say=say, timeout=3600)
            print(f"{n_train} training images, {image_size}x{image_size}, distributed stack:", flush=True)
            return wheel.turn(photos())
        except Exception:
            print(platform.logs(4000), file=sys.stderr)
            raise


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
