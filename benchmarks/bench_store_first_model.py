#!/usr/bin/env python3
"""The first model with its data on the object store, against the same data in a folder, in one run.

Goal: at most 1.10x the folder's time.

    .venv/bin/python benchmarks/bench_store_first_model.py --photos ../shared/data/intel_scenes_train_8k \\
        [--limit 0] [--feedback 50] [--work /tmp/fsdl-first-model]

For each back-end (a folder, then the data bucket of a real SeaweedFS as the workers' identity):

1. seeds train and test from ``--photos`` (50 test photos a class, read by path, never into the
   repository) through :mod:`fsdl_lib.seeding`: the time to bring the data in;
2. the first model, as the training DAG makes it: :func:`fsdl_lib.scenes.create_dataset` (scan
   and hash both splits, extract every photo's ResNet50 features at ``FSDL_IMAGE_SIZE``, write the
   feature store), then loads the features back and fits the default candidate (a scaled, reduced
   LogisticRegression) and scores it on the test split (weighted F1). The ratio store/folder is the
   goal's;
3. the feedback turnaround: ``--feedback`` accepted answers (re-encoded test-split photos of another
   class, so new bytes) placed where the web app writes them, merged into the training split
   (:func:`fsdl_lib.merge.merge_feedback`), and the dataset updated again (only they are extracted).

Both back-ends must give the same dataset version and the same predictions. Then the store's bytes
per image and its memory at rest. Random ResNet50 weights (``FSDL_OFFLINE_WEIGHTS=1``): the cost is
the same as with the ImageNet ones.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil
from PIL import Image
from sklearn.metrics import f1_score

from fsdl_lib import storage
from fsdl_lib.candidates import CANDIDATES, build_pipeline, fit
from fsdl_lib.classes import SCENE_CLASSES
from fsdl_lib.config import load_settings
from fsdl_lib.merge import merge_feedback
from fsdl_lib.scenes import create_dataset
from fsdl_lib.seeding import seed_scenes
from fsdl_tools.objectstore import WeedServer

DEFAULT_CANDIDATE = "logreg_c1"


def limited(photos: Path, limit: int, into: Path) -> Path:
    """``photos`` itself, or a folder of links to the first ``limit`` photos of each class."""
    if not limit:
        return photos
    for label in SCENE_CLASSES:
        (into / label).mkdir(parents=True, exist_ok=True)
        for photo in sorted((photos / label).iterdir())[:limit]:
            (into / label / photo.name).symlink_to(photo.resolve())
    return into


def rss_mib(pid: int) -> float:
    process = psutil.Process(pid)
    return sum(p.memory_info().rss for p in (process, *process.children(recursive=True))) / 2**20


def environment(root: Path) -> dict[str, str]:
    env = {"FSDL_OFFLINE_WEIGHTS": "1"}
    if not storage.is_object_store(root):
        return {**env, "FSDL_DATA_DIR": str(root)}
    options = root.storage_options  # type: ignore[attr-defined]
    prefix = str(root.path).partition("/")[2]  # type: ignore[attr-defined]
    return {
        **env,
        "FSDL_DATA_URL": str(root),
        # Accepted answers wait in the uploads bucket, as in the platform (the merge moves them out).
        "FSDL_FEEDBACK_URL": f"s3://fsdl-uploads/{prefix}/feedback",
        "FSDL_S3_ENDPOINT_URL": options["client_kwargs"]["endpoint_url"],
        "FSDL_S3_ACCESS_KEY_ID": options["key"],
        "FSDL_S3_SECRET_ACCESS_KEY": options["secret"],
    }


def first_model(root: Path) -> dict:
    settings = load_settings({**os.environ, **environment(root)})
    start = time.perf_counter()
    dataset = create_dataset(settings)
    extracted = time.perf_counter()
    train, test = dataset.load("train"), dataset.load("test")
    pipeline = build_pipeline(CANDIDATES[DEFAULT_CANDIDATE])
    fit(pipeline, train.features, train.labels)
    predictions = pipeline.predict(test.features)
    done = time.perf_counter()
    return {
        "settings": settings,
        "dataset": dataset.version,
        "seconds": done - start,
        "dataset_seconds": extracted - start,
        "train_seconds": done - extracted,
        "images": len(train) + len(test),
        "predictions": predictions,
        "f1": f1_score(test.labels, predictions, average="weighted"),
    }


def feedback_turnaround(settings, test_photos: Path, count: int) -> dict:
    """Accepted answers in the feedback place, merged, then the dataset updated: the time of each."""
    placed = 0
    for index, label in enumerate(SCENE_CLASSES):
        source = test_photos / SCENE_CLASSES[(index + 1) % len(SCENE_CLASSES)]
        for photo in sorted(source.iterdir())[: -(-count // len(SCENE_CLASSES))]:
            if placed == count:
                break
            encoded = io.BytesIO()
            Image.open(photo).convert("RGB").save(encoded, format="JPEG", quality=81)
            data = encoded.getvalue()
            name = f"{hashlib.sha256(data).hexdigest()}.jpg"
            storage.write_bytes(settings.scenes_feedback_dir / label / name, data)
            placed += 1
    start = time.perf_counter()
    report = merge_feedback(settings, f"bench__{int(time.time())}")
    merged = time.perf_counter()
    dataset = create_dataset(settings)
    done = time.perf_counter()
    return {
        "merged": report.merged,
        "merge_seconds": merged - start,
        "update_seconds": done - merged,
        "extracted": dataset.splits["train"].extracted,
        "seconds": done - start,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=Path, required=True, help="a folder of <class>/<photo> files")
    parser.add_argument("--limit", type=int, default=0, help="photos per class at most (0: all)")
    parser.add_argument("--feedback", type=int, default=50, help="accepted answers for the turnaround")
    parser.add_argument("--work", type=Path, default=None, help="where the folder and the store go")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="fsdl-first-model-"))
    photos = limited(args.photos, args.limit, work / "photos")
    server = WeedServer(work / "weed").start()
    results, turnaround, seeding = {}, {}, {}
    try:
        time.sleep(5)
        rest_rss = rss_mib(server.proc.pid)
        roots = {"folder": work / "data", "bucket": server.bucket("data", "workers") / "bench"}
        for name, root in roots.items():
            dataset_dir = root / "raw" / "intel_scenes"
            start = time.perf_counter()
            seed_scenes(photos, dataset_dir, test_per_class=50)
            seeding[name] = time.perf_counter() - start
            results[name] = first_model(root)
            print(f"{name}: first model in {results[name]['seconds']:.1f} s", flush=True)
            test_photos = work / "data" / "raw" / "intel_scenes" / "test"
            turnaround[name] = feedback_turnaround(results[name]["settings"], test_photos, args.feedback)
        time.sleep(5)
        full_rss = rss_mib(server.proc.pid)
        stored = sum(p.stat().st_size for p in (work / "weed" / "data").rglob("*") if p.is_file())
    finally:
        server.stop()
    folder, bucket = results["folder"], results["bucket"]
    assert folder["dataset"] == bucket["dataset"], "the same photos gave different dataset versions"
    assert np.array_equal(folder["predictions"], bucket["predictions"]), "the two models predict differently"
    raw = sum(p.stat().st_size for p in (work / "data" / "raw" / "intel_scenes").rglob("*.jpg"))
    n = folder["images"]
    print(f"\n{n} photos ({n - 300} train, 300 test), image size {folder['settings'].image_size}, "
          f"{os.cpu_count()} cores; dataset version {folder['dataset'][:12]} from both")  # fmt: skip
    print(f"seed:          folder {seeding['folder']:7.1f} s   bucket {seeding['bucket']:7.1f} s")
    for part in ("dataset_seconds", "train_seconds", "seconds"):
        label = {"dataset_seconds": "dataset", "train_seconds": "train+score", "seconds": "FIRST MODEL"}[part]
        print(f"{label + ':':14} folder {folder[part]:7.1f} s   bucket {bucket[part]:7.1f} s   "
              f"({bucket[part] / folder[part]:.3f}x)")  # fmt: skip
    print(f"test F1:       {folder['f1']:.3f} from both (the same predictions)")
    for name in ("folder", "bucket"):
        t = turnaround[name]
        print(f"turnaround {name:6} {t['merged']} answers: merge {t['merge_seconds']:.1f} s + update "
              f"{t['update_seconds']:.1f} s ({t['extracted']} extracted) = {t['seconds']:.1f} s")  # fmt: skip
    print(f"turnaround:    {turnaround['bucket']['seconds'] / turnaround['folder']['seconds']:.2f}x the folder's")
    print(f"per image:     {raw / n / 1024:.1f} KiB of photo, {stored / (n + args.feedback) / 1024:.1f} KiB "
          "in the store (photos, features, manifests)")  # fmt: skip
    print(f"store RSS:     {rest_rss:.0f} MiB at rest empty, {full_rss:.0f} MiB at rest holding it all")
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
