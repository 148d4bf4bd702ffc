#!/usr/bin/env python3
"""Download the Intel Image Scene Classification dataset from Kaggle into data/raw/intel_scenes.

Credentials come from the usual Kaggle places: KAGGLE_USERNAME and KAGGLE_KEY, or
~/.kaggle/kaggle.json (Kaggle → Settings → API → Create New Token).

    python scripts/download_intel_scenes.py              # the whole dataset (~14k train, 3k test)
    python scripts/download_intel_scenes.py --subset     # 1000 train / 300 test, as the original
    python scripts/download_intel_scenes.py --archive intel.zip   # import an already downloaded zip

Photos seeded from samples/ are replaced; a folder with other images is left alone unless --force.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

from fsdl_lib.classes import SCENE_CLASSES
from fsdl_lib.config import load_settings
from fsdl_lib.seeding import MARKER, has_images

DATASET = "puneet6060/intel-image-classification"
API = f"https://www.kaggle.com/api/v1/datasets/download/{DATASET}"
SPLIT_FOLDERS = {"seg_train": "train", "seg_test": "test"}


def credentials() -> tuple[str, str]:
    user, key = os.environ.get("KAGGLE_USERNAME"), os.environ.get("KAGGLE_KEY")
    if user and key:
        return user, key
    config = Path(os.environ.get("KAGGLE_CONFIG_DIR", Path.home() / ".kaggle")) / "kaggle.json"
    if config.is_file():
        token = json.loads(config.read_text())
        return token["username"], token["key"]
    sys.exit(
        "No Kaggle credentials: set KAGGLE_USERNAME and KAGGLE_KEY, or put kaggle.json in ~/.kaggle/ "
        "(Kaggle → Settings → API → Create New Token)."
    )


def download(target: Path) -> None:
    import requests
    from tqdm import tqdm

    with requests.get(API, auth=credentials(), stream=True, timeout=60) as response:
        if response.status_code in (401, 403):
            sys.exit(
                f"Kaggle refused the credentials ({response.status_code}); check them and accept the dataset terms."
            )
        response.raise_for_status()
        total = int(response.headers.get("content-length", 0)) or None
        with target.open("wb") as out, tqdm(total=total, unit="B", unit_scale=True, desc="intel scenes") as bar:
            for chunk in response.iter_content(1 << 20):
                out.write(chunk)
                bar.update(len(chunk))


def members(archive: zipfile.ZipFile) -> dict[str, list[tuple[str, str]]]:
    """(member name, class) of every image in the train and test folders of the Kaggle zip."""
    found: dict[str, list[tuple[str, str]]] = {"train": [], "test": []}
    for name in archive.namelist():
        parts = PurePosixPath(name).parts
        if len(parts) < 3 or not name.lower().endswith((".jpg", ".jpeg", ".png")):
            continue
        split = next((SPLIT_FOLDERS[p] for p in parts if p in SPLIT_FOLDERS), None)
        label = parts[-2]
        if split and label in SCENE_CLASSES:
            found[split].append((name, label))
    return found


def import_archive(
    zip_path: Path, dest: Path, *, subset: dict[str, int] | None = None, seed: int = 42, force: bool = False
) -> dict[str, int]:
    """Copy the train and test images of the Kaggle zip into ``dest/{train,test}/<class>/``."""
    seeded = (dest / MARKER).is_file()
    if not seeded and not force and any(has_images(dest / split) for split in ("train", "test")):
        sys.exit(f"{dest} already holds a dataset; pass --force to add the download to it.")
    with zipfile.ZipFile(zip_path) as archive:
        found = members(archive)
        if not found["train"]:
            sys.exit(f"{zip_path} holds no seg_train/<class>/ images; is it the {DATASET} archive?")
        if seeded:
            for split in ("train", "test"):
                shutil.rmtree(dest / split, ignore_errors=True)
            (dest / MARKER).unlink()
        counts = {}
        for split, items in found.items():
            items = sorted(items)
            if subset and subset.get(split):
                items = sorted(random.Random(seed).sample(items, min(subset[split], len(items))))
            for name, label in items:
                target = dest / split / label / PurePosixPath(name).name
                target.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(name) as src, tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as tmp:
                    shutil.copyfileobj(src, tmp)
                Path(tmp.name).replace(target)
            counts[split] = len(items)
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subset", action="store_true", help="random 1000 train / 300 test images (seeded)")
    parser.add_argument("--train-size", type=int, default=1000)
    parser.add_argument("--test-size", type=int, default=300)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--archive", type=Path, help="use this zip instead of downloading")
    parser.add_argument("--force", action="store_true", help="add to a folder that already holds images")
    args = parser.parse_args()

    dest = load_settings().scenes_raw_dir
    subset = {"train": args.train_size, "test": args.test_size} if args.subset else None
    with tempfile.TemporaryDirectory() as tmp:
        archive = args.archive
        if archive is None:
            archive = Path(tmp) / "intel.zip"
            download(archive)
        counts = import_archive(archive, dest, subset=subset, seed=args.seed, force=args.force)
    print(f"{counts['train']} training and {counts['test']} test images in {dest}")


if __name__ == "__main__":
    main()
