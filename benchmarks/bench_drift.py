#!/usr/bin/env python3
"""Drift checks at real scale: cost per window, false alarms and detections, and the request path.

1. Time and peak memory of one check (fsdl_lib.drift.check_window, 500 permutations, one BLAS thread
   as the web app runs it) against a 500-image reference, per window size.
2. How often a check flags drift: windows of held-out photos as they are (false alarms), in poor
   light, slightly darker, and of one class only, at alpha 0.01 and 0.05.
3. What it adds to a prediction: /api/v1/predict in-process, p50 and p99, with a drift check running
   continuously beside it against none (interleaved blocks), and the time to keep a prediction's
   features in the log.

    .venv/bin/python benchmarks/bench_drift.py [--photos ../shared/data/intel_scenes_train_8k] [--per-class 200]

Without --photos it uses the 120 sample photos (small windows only). Random ResNet50 weights, 224 px.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import statistics
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter
from threadpoolctl import threadpool_limits
from tqdm import tqdm

from fsdl_lib import drift
from fsdl_lib.classes import SCENE_CLASSES
from fsdl_lib.features import FeatureExtractor
from fsdl_lib.images import load_image

ROOT = Path(__file__).resolve().parent.parent


def dusk(image: Image.Image) -> Image.Image:
    image = ImageEnhance.Brightness(image).enhance(0.45)
    return ImageEnhance.Contrast(image).enhance(0.6).filter(ImageFilter.GaussianBlur(2))


def dimmer(image: Image.Image) -> Image.Image:
    return ImageEnhance.Brightness(image).enhance(0.8)


def photos(folder: Path, per_class: int) -> tuple[list[Path], np.ndarray]:
    paths, labels = [], []
    for label in SCENE_CLASSES:
        found = sorted((folder / label).glob("*.jpg"))[:per_class]
        paths += found
        labels += [label] * len(found)
    return paths, np.array(labels)


def extract(fx: FeatureExtractor, paths: list[Path], transform=None, what: str = "") -> np.ndarray:
    out = []
    for start in tqdm(range(0, len(paths), 32), desc=f"features {what}", unit="batch"):
        images = [load_image(p) for p in paths[start : start + 32]]
        out.append(fx.extract([transform(i) if transform else i for i in images]))
    return np.concatenate(out)


def cost(reference: drift.Reference, features: np.ndarray, labels: np.ndarray, windows: list[int]) -> None:
    print("\n1. one check against a 500-image reference (500 permutations, 1 BLAS thread)")
    print(f"   {'window':>7} {'seconds (median of 3)':>22} {'peak MiB':>9}")
    for size in windows:
        if size > len(features):
            continue
        rows = np.arange(size)
        confidence = np.full(size, 0.8)
        times = []
        with threadpool_limits(1):
            for _ in range(3):
                tracemalloc.start()
                start = time.perf_counter()
                drift.check_window(reference, features[rows], list(labels[rows]), confidence)
                times.append(time.perf_counter() - start)
                peak = tracemalloc.get_traced_memory()[1] / 2**20
                tracemalloc.stop()
        print(f"   {size:>7} {statistics.median(times):>22.2f} {peak:>9.1f}")


def rates(train: np.ndarray, pools: dict[str, np.ndarray], labels: np.ndarray, window: int, trials: int):
    """Each trial draws a reference of 500 training photos and a window of held-out ones afresh."""
    print(f"\n2. share of {trials} windows of {window} held-out photos flagged, each against its own reference")
    print("   of 500 training photos")
    print(f"   {'windows':<38} {'alpha 0.01':>10} {'alpha 0.05':>10}")
    rng = np.random.default_rng(7)
    for name, features in pools.items():
        p_values = []
        for trial in tqdm(range(trials), desc=name, leave=False):
            if name.startswith("one class"):
                label = SCENE_CLASSES[trial % len(SCENE_CLASSES)]
                candidates = np.flatnonzero(labels == label)
            else:
                candidates = np.arange(len(features))
            rows = rng.choice(candidates, size=min(window, len(candidates)), replace=False)
            reference = train[rng.choice(len(train), size=min(drift.REFERENCE_SIZE, len(train)), replace=False)]
            p_values.append(drift.mmd_test(reference, features[rows], seed=trial).p_value)
        p = np.array(p_values)
        print(f"   {name:<38} {np.mean(p < 0.01):>10.2f} {np.mean(p < 0.05):>10.2f}")


def request_path(features_dim: int, sample: list[bytes], blocks: int) -> None:
    """Predict in-process with and without a drift check running beside it (interleaved blocks)."""
    import mlflow

    from fsdl_lib.candidates import CANDIDATES, build_pipeline, fit
    from fsdl_lib.config import Settings
    from fsdl_webapp import create_app
    from fsdl_webapp.config import WebSettings

    print("\n3. the request path")
    fx = FeatureExtractor(offline_weights=True, image_size=224)
    with tempfile.TemporaryDirectory() as tmp:
        mlflow.set_tracking_uri(f"sqlite:///{tmp}/mlflow.db")
        mlflow.set_experiment(experiment_id=mlflow.create_experiment("bench", artifact_location=f"{tmp}/artifacts"))
        x = fx.extract([load_image(b) for b in sample])
        y = np.array([SCENE_CLASSES[i % 6] for i in range(len(sample))])
        model = build_pipeline(CANDIDATES["logreg_c1"])
        fit(model, x, y)
        from fsdl_lib.graph_store import publish_extractor
        from fsdl_lib.tracking import log_drift_reference, log_sklearn_model, register_version

        with mlflow.start_run() as run:
            log_sklearn_model(model, x[:2])
            log_drift_reference(drift.Reference.build(x, y, np.full(len(y), 0.8)))
        register_version(f"runs:/{run.info.run_id}/model", "bench", aliases=["production"],
                         tags={"backbone_id": fx.id, **publish_extractor(fx).tags})  # fmt: skip
        settings = dataclasses.replace(Settings.from_env(), data_dir=Path(tmp) / "data", scenes_model_name="bench",
                                       offline_weights=True, image_size=224)  # fmt: skip
        web = dataclasses.replace(WebSettings(), state_dir=f"{tmp}/webapp", drift_min_window=10, drift_window=200)
        app = create_app({"FSDL_SETTINGS": settings, "WEB_SETTINGS": web, "START_POLLING": False})
        client, monitor, store = (
            app.test_client(),
            app.extensions["fsdl_drift"],
            app.extensions["fsdl_records"].predictions,
        )

        def predict_block(n: int) -> list[float]:
            out = []
            for i in range(n):
                start = time.perf_counter()
                response = client.post(
                    "/api/v1/predict", data={"image": (io.BytesIO(sample[i % len(sample)]), "p.jpg")}
                )
                out.append(time.perf_counter() - start)
                assert response.status_code == 200, response.json
            return out

        predict_block(20)  # warm up, and a first window
        checks = 0

        def churn(stop: threading.Event) -> None:
            nonlocal checks
            while not stop.is_set():
                if monitor.check() is not None:
                    checks += 1
                else:
                    time.sleep(0.01)

        alone, beside = [], []
        for block in tqdm(range(blocks), desc="interleaved blocks"):
            if block % 2:
                stop = threading.Event()
                worker = threading.Thread(target=churn, args=(stop,))
                worker.start()
                beside += predict_block(20)
                stop.set()
                worker.join()
            else:
                alone += predict_block(20)

        def pct(values: list[float], q: float) -> float:
            return float(np.percentile(values, q) * 1000)

        print(f"   predict p50 {pct(alone, 50):.1f} ms alone, {pct(beside, 50):.1f} ms with checks running back to "
              f"back beside it ({checks} checks; the default is one per 300 s): {pct(beside, 50) / pct(alone, 50):.2f}x")  # fmt: skip
        print(f"   predict p99 {pct(alone, 99):.1f} ms alone, {pct(beside, 99):.1f} ms beside: "
              f"{pct(beside, 99) / pct(alone, 99):.2f}x")  # fmt: skip
        # Keeping the features: the same INSERT with and without the 4 KB of float16.
        vector = np.random.default_rng(0).random(features_dim).astype(np.float32)
        timing: dict[str, list[float]] = {"with": [], "without": []}
        for i in range(400):
            kind = "with" if i % 2 else "without"
            start = time.perf_counter()
            store.record(f"{i:032x}", sample[0], "jpg", model_name="bench", model_version="1",
                                    label="sea", probabilities={"sea": 1.0}, latency_ms=1.0,
                                    features=vector if kind == "with" else None)  # fmt: skip
            timing[kind].append(time.perf_counter() - start)
        with_ms, without_ms = (statistics.median(timing[k]) * 1000 for k in ("with", "without"))
        print(
            f"   logging a prediction: {without_ms:.2f} ms, {with_ms:.2f} ms with its features "
            f"(+{with_ms - without_ms:.2f} ms, {100 * (with_ms - without_ms) / pct(alone, 50):.1f} % of a prediction)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=Path, help="a folder of <class>/<photo>.jpg (default: the 120 samples)")
    parser.add_argument("--per-class", type=int, default=200, help="photos per class to read")
    parser.add_argument("--trials", type=int, default=100, help="windows per kind in part 2")
    parser.add_argument("--blocks", type=int, default=10, help="interleaved blocks of 20 predictions in part 3")
    args = parser.parse_args()
    folder = args.photos or ROOT / "samples" / "intel_scenes"
    paths, labels = photos(folder, args.per_class)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(paths))
    half = len(paths) // 2
    train, held = order[:half], order[half:]
    fx = FeatureExtractor(offline_weights=True, image_size=224)
    print(f"{len(paths)} photos from {folder}: {len(train)} as training, {len(held)} held out; backbone {fx.id}")
    train_features = extract(fx, [paths[i] for i in train], what="training")
    held_paths = [paths[i] for i in held]
    pools = {
        "as they are (false alarms)": extract(fx, held_paths, what="held out"),
        "slightly darker (brightness 0.8)": extract(fx, held_paths, dimmer, "darker"),
        "in poor light (dark, hazy, blurred)": extract(fx, held_paths, dusk, "poor light"),
    }
    pools["one class only"] = pools["as they are (false alarms)"]
    reference = drift.Reference.build(train_features, labels[train], np.full(50, 0.8))
    window = min(200, len(held) // 2)
    cost(reference, pools["as they are (false alarms)"], labels[held], [50, 100, 200, 400, 800])
    rates(train_features, pools, labels[held], window, args.trials)
    request_path(train_features.shape[1], [p.read_bytes() for p in paths[:60]], args.blocks)


if __name__ == "__main__":
    main()
