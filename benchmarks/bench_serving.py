#!/usr/bin/env python3
"""Web app latency and memory, measured in one run against a real MLflow server and gunicorn.

Latency: p50 and p99 of POST /api/v1/predict with 1 and 4 concurrent clients, against the same
work done in-process (decode, features, classifier). Targets: p50 <= 1.25x in-process, p99 <= 2x p50.
Memory: resident memory of the serving processes with the model loaded, against a floor measured
in the same run (a bare process with torch, torchvision, ResNet50 and scikit-learn loaded).
Targets: one serving process <= 1.15x the floor; all gunicorn processes together <= 1.3x.

    .venv/bin/python benchmarks/bench_serving.py [--requests 40] [--workers 1]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import requests

from fsdl_tools.clients import free_port, wait_for_http

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
FLOOR = """
import psutil, sklearn.linear_model, sklearn.svm, torch, torchvision
from fsdl_lib.features import FeatureExtractor
FeatureExtractor(offline_weights=True, image_size=224, device="cpu")
print(psutil.Process().memory_info().rss)
"""


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def register_model(tmp: Path) -> None:
    import mlflow

    from fsdl_lib.candidates import CANDIDATES, build_pipeline, fit
    from fsdl_lib.feature_store import FeatureStore
    from fsdl_lib.features import FeatureExtractor
    from fsdl_lib.seeding import seed_scenes
    from fsdl_lib.tracking import log_sklearn_model, register_version

    seed_scenes(ROOT / "samples" / "intel_scenes", tmp / "scenes")
    fx = FeatureExtractor(offline_weights=True, image_size=224, device="cpu")
    train, _ = FeatureStore(tmp / "train.npz").update(tmp / "scenes" / "train", fx)
    model = build_pipeline(CANDIDATES["logreg_c1"])
    fit(model, train.features, train.labels)
    with mlflow.start_run() as run:
        log_sklearn_model(model, train.features[:2])
    register_version(f"runs:/{run.info.run_id}/model", "bench-scenes", aliases=["production"],
                     tags={"backbone_id": fx.id, "dataset_version": train.version})  # fmt: skip


def in_process_ms(photos: list[bytes]) -> list[float]:
    from fsdl_lib.features import FeatureExtractor
    from fsdl_lib.images import load_image
    from fsdl_lib.tracking import load_model

    fx = FeatureExtractor(offline_weights=True, image_size=224, device="cpu")
    model = load_model("bench-scenes", "production").model
    times = []
    for data in [photos[0], *photos]:  # the first call warms up
        start = time.perf_counter()
        model.predict_proba(fx.extract([load_image(data)]))
        times.append((time.perf_counter() - start) * 1000)
    return times[1:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    photos = [p.read_bytes() for p in sorted((ROOT / "samples" / "intel_scenes").glob("*/*.jpg"))[: args.requests]]

    floor = int(subprocess.run([sys.executable, "-c", FLOOR], capture_output=True, text=True, check=True).stdout)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        mlflow_port, web_port = free_port(), free_port()
        env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
        mlflow = subprocess.Popen(
            [str(BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(mlflow_port), "--workers", "1",
             "--backend-store-uri", f"sqlite:///{tmp}/mlflow.db", "--artifacts-destination", str(tmp / "artifacts")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
        )  # fmt: skip
        web = None
        try:
            wait_for_http(f"http://127.0.0.1:{mlflow_port}/health", 180)
            os.environ["MLFLOW_TRACKING_URI"] = f"http://127.0.0.1:{mlflow_port}"
            register_model(tmp)
            web_env = {
                **os.environ,
                "FSDL_SCENES_MODEL_NAME": "bench-scenes",
                "FSDL_OFFLINE_WEIGHTS": "1",
                "FSDL_DATA_DIR": str(tmp / "data"),
                "WEBAPP_STATE_DIR": str(tmp / "webapp"),
                "WEBAPP_PORT": str(web_port),
                "WEBAPP_WORKERS": str(args.workers),
                "WEBAPP_SECRET_KEY": "bench",
            }
            web = subprocess.Popen(
                [str(BIN / "gunicorn"), "-c", "python:fsdl_webapp.gunicorn_conf", "fsdl_webapp:create_app()"],
                env=web_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            url = f"http://127.0.0.1:{web_port}"
            wait_for_http(f"{url}/readyz", 180)

            local = in_process_ms(photos)
            local_p50 = statistics.median(local)
            print(f"{len(photos)} requests of 150x150 JPEGs; gunicorn {args.workers} gevent worker(s)")
            print(f"  in-process        p50 {local_p50:7.1f} ms   p99 {percentile(local, 0.99):7.1f} ms")

            def post(data: bytes) -> float:
                start = time.perf_counter()
                response = requests.post(f"{url}/api/v1/predict", files={"image": ("x.jpg", data)}, timeout=120)
                response.raise_for_status()
                return (time.perf_counter() - start) * 1000

            post(photos[0])
            for clients in (1, 4):
                with ThreadPoolExecutor(clients) as pool:
                    start = time.perf_counter()
                    latencies = list(pool.map(post, photos))
                    elapsed = time.perf_counter() - start
                p50, p99 = statistics.median(latencies), percentile(latencies, 0.99)
                print(
                    f"  HTTP, {clients} client(s)  p50 {p50:7.1f} ms   p99 {p99:7.1f} ms   "
                    f"p50 = {p50 / local_p50:4.2f}x in-process (target <= 1.25), p99 = {p99 / p50:4.2f}x p50 "
                    f"(target <= 2), {len(photos) / elapsed:5.1f} req/s"
                )

            master = psutil.Process(web.pid)
            workers = master.children(recursive=True)
            worker_rss = max(w.memory_info().rss for w in workers)
            # RSS counts shared pages once per process: a conservative total (this benchmark's own
            # process maps the same libraries, which would make PSS look better than it is).
            total_rss = sum(p.memory_info().rss for p in [master, *workers])
            print(
                f"\nmemory (floor: a bare process with torch, torchvision, ResNet50, scikit-learn = {floor / 2**20:.0f} MiB)"
            )
            print(
                f"  largest serving process  RSS {worker_rss / 2**20:6.0f} MiB = {worker_rss / floor:4.2f}x floor (target <= 1.15)"
            )
            print(
                f"  all gunicorn processes   RSS {total_rss / 2**20:6.0f} MiB = {total_rss / floor:4.2f}x floor (target <= 1.3)"
            )
        finally:
            for proc in (web, mlflow):
                if proc is not None:
                    proc.terminate()
                    proc.wait(timeout=30)


if __name__ == "__main__":
    main()
