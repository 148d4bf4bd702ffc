#!/usr/bin/env python3
"""Web app latency and memory, measured in one run against a real MLflow server and gunicorn.

Latency: p50 and p99 of POST /api/v1/predict with 1 and 4 concurrent clients, against the same
work done in-process (decode, features from the backbone graph on ONNX Runtime, classifier).
Targets: p50 <= 1.25x in-process, p99 <= 2x p50.
Memory: resident memory of the serving processes with the model loaded, against a floor measured
in the same run: a bare process with ONNX Runtime running the backbone graph once, and scikit-learn
loaded. Targets: one serving process <= 1.15x the floor; all gunicorn processes together <= 1.3x.
For scale, the torch floor (torch, torchvision, ResNet50 and scikit-learn, what serving needed
before the graph) is measured too.
Against what a user would pick instead: `mlflow models serve` of the same classifier packaged as an
image-to-class pyfunc (scene_pyfunc.py) running the same graph, one worker, the same photos and
clients in the same run. Target: the web app's throughput >= 1.0x the pyfunc server's, at no worse p99.

    .venv/bin/python benchmarks/bench_serving.py [--requests 40] [--workers 1] [--no-pyfunc]
"""

from __future__ import annotations

import argparse
import base64
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
import sys, psutil, sklearn.linear_model, sklearn.svm
from PIL import Image
from fsdl_lib.graph import GraphExtractor
GraphExtractor(sys.argv[1], batch_size=1).extract([Image.new("RGB", (150, 150))])
print(psutil.Process().memory_info().rss)
"""
OPEN_BUDGETS = {
    "WEBAPP_RATE_LIMIT_PREDICT": "1000000/minute",
    "WEBAPP_UPLOAD_BUDGET": "1000000/hour",
    "WEBAPP_RATE_LIMIT_DEFAULT": "1000000/minute",
}
"""Per-client budgets no benchmark client reaches (they all come from one address)."""
TORCH_FLOOR = """
import psutil, sklearn.linear_model, sklearn.svm, torch, torchvision
from fsdl_lib.features import FeatureExtractor
FeatureExtractor(offline_weights=True, image_size=224, device="cpu")
print(psutil.Process().memory_info().rss)
"""


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def start_mlflow(tmp: Path) -> subprocess.Popen:
    """A real MLflow server on SQLite in ``tmp``, answering; this process's client points at it."""
    port = free_port()
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    proc = subprocess.Popen(
        [str(BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
         "--backend-store-uri", f"sqlite:///{tmp}/mlflow.db", "--artifacts-destination", str(tmp / "artifacts")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
    )  # fmt: skip
    try:
        wait_for_http(f"http://127.0.0.1:{port}/health", 180)
    except BaseException:
        proc.terminate()
        raise
    os.environ["MLFLOW_TRACKING_URI"] = f"http://127.0.0.1:{port}"
    return proc


def register_model(tmp: Path) -> tuple[str, Path]:
    """A classifier registered as the DAGs register one, with its backbone graph exported and published;
    its model URI and the graph's file."""
    import mlflow

    from fsdl_lib.candidates import CANDIDATES, build_pipeline, fit
    from fsdl_lib.feature_store import FeatureStore
    from fsdl_lib.features import FeatureExtractor
    from fsdl_lib.graph import export_graph
    from fsdl_lib.graph_store import TAG_GRAPH_RUN, TAG_GRAPH_SHA256, publish_graph
    from fsdl_lib.seeding import seed_scenes
    from fsdl_lib.tracking import log_sklearn_model, register_version

    seed_scenes(ROOT / "samples" / "intel_scenes", tmp / "scenes")
    fx = FeatureExtractor(offline_weights=True, image_size=224, device="cpu")
    train, _ = FeatureStore(tmp / "train.npz").update(tmp / "scenes" / "train", fx)
    model = build_pipeline(CANDIDATES["logreg_c1"])
    fit(model, train.features, train.labels)
    with mlflow.start_run() as run:
        log_sklearn_model(model, train.features[:2])
    graph = tmp / "backbone.onnx"
    digest = export_graph(fx, graph)
    tags = {
        "backbone_id": fx.id,
        "dataset_version": train.version,
        TAG_GRAPH_SHA256: digest,
        TAG_GRAPH_RUN: publish_graph(graph.read_bytes(), fx.id, digest),
    }
    version = register_version(f"runs:/{run.info.run_id}/model", "bench-scenes", aliases=["production"], tags=tags)
    return f"models:/bench-scenes/{version.version}", graph


def log_pyfunc(classifier_uri: str, graph: Path) -> str:
    """The classifier and the backbone graph packaged as an image-to-class pyfunc (model from code); its model URI."""
    import mlflow

    with mlflow.start_run():
        info = mlflow.pyfunc.log_model(
            name="scene-pyfunc",
            python_model=str(ROOT / "benchmarks" / "scene_pyfunc.py"),
            artifacts={"classifier": classifier_uri, "graph": str(graph)},
        )
    return info.model_uri


def in_process(graph: Path):
    """The same work in this process (decode, features, classifier): a callable timing one photo."""
    from fsdl_lib.graph import GraphExtractor
    from fsdl_lib.images import load_image
    from fsdl_lib.tracking import load_model

    fx = GraphExtractor(graph, batch_size=1)
    model = load_model("bench-scenes", "production").model

    def run(data: bytes) -> float:
        start = time.perf_counter()
        model.predict_proba(fx.extract([load_image(data)]))
        return (time.perf_counter() - start) * 1000

    return run


def interleaved(servers: dict, photos: list[bytes], clients: int, rounds: int = 3) -> dict:
    """p50, p99 (ms) and throughput (req/s, the median round) of each server, measured in
    alternating rounds so that the machine's drift during the run falls on all of them alike."""
    latencies: dict[str, list[float]] = {name: [] for name in servers}
    rates: dict[str, list[float]] = {name: [] for name in servers}
    for post in servers.values():
        post(photos[0])  # warm up
    for _ in range(rounds):
        for name, post in servers.items():
            start = time.perf_counter()
            if clients == 1:  # in this thread, as the in-process figure is measured
                latencies[name] += [post(photo) for photo in photos]
            else:
                with ThreadPoolExecutor(clients) as pool:
                    latencies[name] += pool.map(post, photos)
            rates[name].append(len(photos) / (time.perf_counter() - start))
    return {
        name: (statistics.median(latencies[name]), percentile(latencies[name], 0.99), statistics.median(rates[name]))
        for name in servers
    }


def start_pyfunc(tmp: Path, classifier_uri: str, graph: Path):
    """`mlflow models serve` of the classifier as an image-to-class pyfunc; the process and a
    callable timing one photo posted to it."""
    port = free_port()
    model_uri = log_pyfunc(classifier_uri, graph)
    log_path = tmp / "pyfunc.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [str(BIN / "mlflow"), "models", "serve", "-m", model_uri, "--env-manager", "local",
             "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
            env={**os.environ, "FSDL_OFFLINE_WEIGHTS": "1", "PATH": f"{BIN}:{os.environ['PATH']}"},
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        wait_for_http(f"http://127.0.0.1:{port}/ping", 300, proc)
    except RuntimeError:
        print(log_path.read_text()[-3000:], file=sys.stderr)
        raise

    def invoke(data: bytes) -> float:
        body = {"dataframe_split": {"columns": ["image"], "data": [[base64.b64encode(data).decode()]]}}
        start = time.perf_counter()
        response = requests.post(f"http://127.0.0.1:{port}/invocations", json=body, timeout=120)
        response.raise_for_status()
        return (time.perf_counter() - start) * 1000

    return proc, invoke


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--no-pyfunc", action="store_true", help="skip the `mlflow models serve` comparison")
    args = parser.parse_args()
    photos = [p.read_bytes() for p in sorted((ROOT / "samples" / "intel_scenes").glob("*/*.jpg"))[: args.requests]]

    torch_floor = int(subprocess.run([sys.executable, "-c", TORCH_FLOOR], capture_output=True, text=True,
                                     check=True).stdout)  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        web_port = free_port()
        mlflow = start_mlflow(tmp)
        web = pyfunc = None
        try:
            classifier_uri, graph = register_model(tmp)
            floor = int(subprocess.run([sys.executable, "-c", FLOOR, str(graph)], capture_output=True, text=True,
                                       check=True).stdout)  # fmt: skip
            web_env = {
                **os.environ,
                **OPEN_BUDGETS,
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

            def post(data: bytes) -> float:
                start = time.perf_counter()
                response = requests.post(f"{url}/api/v1/predict", files={"image": ("x.jpg", data)}, timeout=120)
                response.raise_for_status()
                return (time.perf_counter() - start) * 1000

            servers = {"in-process": in_process(graph), "web app": post}
            if not args.no_pyfunc:
                pyfunc, invoke = start_pyfunc(tmp, classifier_uri, graph)
                servers["pyfunc"] = invoke
            print(
                f"{len(photos)} requests of 150x150 JPEGs, 3 alternating rounds; gunicorn {args.workers} gevent worker(s)"
            )
            one = interleaved(servers, photos, 1)
            four = interleaved({k: v for k, v in servers.items() if k != "in-process"}, photos, 4)
            local_p50 = one["in-process"][0]
            print(f"  in-process        p50 {local_p50:7.1f} ms   p99 {one['in-process'][1]:7.1f} ms")
            for clients, results in ((1, one), (4, four)):
                p50, p99, rate = results["web app"]
                print(
                    f"  HTTP, {clients} client(s)  p50 {p50:7.1f} ms   p99 {p99:7.1f} ms   "
                    f"p50 = {p50 / local_p50:4.2f}x in-process (target <= 1.25), p99 = {p99 / p50:4.2f}x p50 "
                    f"(target <= 2), {rate:5.1f} req/s"
                )

            master = psutil.Process(web.pid)
            workers = master.children(recursive=True)
            worker_rss = max(w.memory_info().rss for w in workers)
            # RSS counts shared pages once per process: a conservative total (this benchmark's own
            # process maps the same libraries, which would make PSS look better than it is).
            total_rss = sum(p.memory_info().rss for p in [master, *workers])
            print(
                f"\nmemory (floor: a bare process running the backbone graph on ONNX Runtime, with scikit-learn = "
                f"{floor / 2**20:.0f} MiB; the torch floor, for scale: {torch_floor / 2**20:.0f} MiB)"
            )
            print(
                f"  torch in the serving processes: {any('torch' in str(m.path) for w in workers for m in w.memory_maps())}"
            )
            print(
                f"  largest serving process  RSS {worker_rss / 2**20:6.0f} MiB = {worker_rss / floor:4.2f}x floor (target <= 1.15)"
            )
            print(
                f"  all gunicorn processes   RSS {total_rss / 2**20:6.0f} MiB = {total_rss / floor:4.2f}x floor (target <= 1.3)"
            )
            if pyfunc is not None:
                print("\nagainst `mlflow models serve` of the same classifier as an image-to-class pyfunc, 1 worker:")
                for clients, results in ((1, one), (4, four)):
                    p50, p99, rate = results["pyfunc"]
                    _, our_p99, our_rate = results["web app"]
                    print(
                        f"  {clients} client(s): pyfunc p50 {p50:7.1f} ms  p99 {p99:7.1f} ms  {rate:5.1f} req/s; "
                        f"web app throughput {our_rate / rate:4.2f}x (target >= 1.0), "
                        f"p99 {our_p99 / p99:4.2f}x (target <= 1.0)"
                    )
        finally:
            for proc in (pyfunc, web, mlflow):
                if proc is not None:
                    proc.terminate()
                    proc.wait(timeout=30)


if __name__ == "__main__":
    main()
