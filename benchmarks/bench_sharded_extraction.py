#!/usr/bin/env python3
"""Sharded feature extraction on one CPU against two, measured in one run.

The scene DAGs map ``extract_features`` over the shards ``plan_extraction`` cuts (fsdl_lib.scenes.dataset);
Celery gives each shard to whichever worker is free. This measures what that buys, below Airflow and
Celery: the same shards extracted by worker processes, each pinned to one CPU (its affinity, what
compose's ``cpus``/``cpuset`` and taskset narrow), taking shards from one queue:

1. one worker on CPU 0 extracts every shard;
2. two workers, on CPU 0 and CPU 1, share them;

then ``create_dataset`` takes the second run's shards in, and the dataset version is checked against
the first's. It also prints each shard's seconds per image. The photos are read by path (the first
``--per-class`` of each class of ``--photos``, linked into a temporary folder), never copied into the
repository.

    .venv/bin/python benchmarks/bench_sharded_extraction.py --photos ../shared/data/intel_scenes_train_8k
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from fsdl_lib import storage
from fsdl_lib.classes import SCENE_CLASSES
from fsdl_lib.config import load_settings
from fsdl_lib.scenes import create_dataset
from fsdl_lib.scenes.dataset import extract_shard, plan_extraction, shards_folder


def link_photos(photos: Path, per_class: int, into: Path) -> int:
    """Links to the first ``per_class`` photos of each class as a training split; a few as test."""
    count = 0
    for label in SCENE_CLASSES:
        chosen = sorted((photos / label).iterdir())[: per_class + 5]
        for split, group in (("test", chosen[:5]), ("train", chosen[5:])):
            (into / split / label).mkdir(parents=True, exist_ok=True)
            for photo in group:
                (into / split / label / photo.name).symlink_to(photo.resolve())
                count += 1
    return count


def worker(cpu: int, queue: Path, done: Path) -> None:
    """Pinned to ``cpu`` with one thread, take shards off ``queue`` (one file per shard, claimed by
    renaming it) until none is left; write what each took."""
    os.sched_setaffinity(0, {cpu})
    os.environ["FSDL_TASK_THREADS"] = "1"
    from fsdl_lib.resources import limit_threads

    limit_threads(1)
    settings = load_settings()
    results = []
    for shard_file in sorted(queue.glob("*.json")):
        claimed = shard_file.with_suffix(f".cpu{cpu}")
        try:
            shard_file.rename(claimed)
        except FileNotFoundError:
            continue  # the other worker took it
        shard = json.loads(claimed.read_text())
        start = time.perf_counter()
        result = extract_shard(settings, shard)
        results.append({**result, "seconds": time.perf_counter() - start, "cpu": cpu})
    done.write_text(json.dumps(results))


def run(cpus: list[int], shards: list[dict], work: Path) -> tuple[float, list[dict]]:
    queue = work / "queue"
    queue.mkdir(parents=True)
    for index, shard in enumerate(shards):
        (queue / f"{index:04d}.json").write_text(json.dumps(shard))
    start = time.perf_counter()
    procs = [
        subprocess.Popen([sys.executable, __file__, "--worker", str(cpu), str(queue), str(work / f"done-{cpu}.json")])
        for cpu in cpus
    ]
    for proc in procs:
        if proc.wait() != 0:
            raise SystemExit(f"a worker exited with {proc.returncode}")
    elapsed = time.perf_counter() - start
    return elapsed, [r for cpu in cpus for r in json.loads((work / f"done-{cpu}.json").read_text())]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=Path, help="a folder of <class>/ photo folders")
    parser.add_argument("--per-class", type=int, default=333, help="training photos per class (333: 1,998)")
    parser.add_argument("--shard-size", type=int, default=256)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(int(args.worker[0]), Path(args.worker[1]), Path(args.worker[2]))
        return
    if args.photos is None:
        parser.error("--photos is required")
    if len(os.sched_getaffinity(0)) < 2:
        raise SystemExit("needs two CPUs")
    cpus = sorted(os.sched_getaffinity(0))[:2]
    os.environ.update(
        FSDL_OFFLINE_WEIGHTS="1", FSDL_IMAGE_SIZE=str(args.image_size), FSDL_EXTRACT_SHARD_SIZE=str(args.shard_size)
    )
    with tempfile.TemporaryDirectory(prefix="fsdl-bench-shards-") as tmp_name:
        tmp = Path(tmp_name)
        timings, versions = {}, {}
        for name, used in (("one worker, one CPU", cpus[:1]), ("two workers, one CPU each", cpus)):
            data = tmp / name.replace(" ", "-").replace(",", "") / "data"
            images = link_photos(args.photos, args.per_class, data / "raw" / "intel_scenes")
            os.environ["FSDL_DATA_DIR"] = str(data)
            settings = load_settings()
            shards = plan_extraction(settings)
            elapsed, results = run(used, shards, data.parent / "work")
            start = time.perf_counter()
            dataset = create_dataset(settings, results)
            merge = time.perf_counter() - start
            assert not storage.files(shards_folder(settings)), "shards left behind"
            timings[name] = elapsed
            versions[name] = dataset.version
            per_image = [r["seconds"] / max(1, r["images"]) for r in results]
            print(
                f"{name:28s} {images} images, {len(shards)} shards: {elapsed:7.1f} s "
                f"({images / elapsed:5.1f} img/s), take-in {merge:4.1f} s, "
                f"per image {min(per_image) * 1000:.0f}-{max(per_image) * 1000:.0f} ms",
                flush=True,
            )
    one, two = timings.values()
    print(f"speed-up of two workers: {one / two:.2f}x (goal >= 1.8x)")
    print(f"same dataset version: {len(set(versions.values())) == 1} ({next(iter(versions.values()))[:12]})")


if __name__ == "__main__":
    main()
