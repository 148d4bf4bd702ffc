#!/usr/bin/env python3
"""The web app under a crowd, with its work in flight bounded (fsdl_webapp.admission) and without.

One gunicorn web app at a time, serving a classifier from a real MLflow server as in
bench_serving.py, with the per-client budgets opened (every client here is 127.0.0.1). For 4, 32 and
128 clients, each posting photos back to back for ``--seconds`` and waiting as a 503's Retry-After
asks: the answered requests' p50 and p99, the share answered 503 at once, and the answers per
second; then clients that ignore Retry-After and ask again at once. The clients run on the same
machine as the server. First with the defaults (latency budget
2 s), then with the bound lifted (a budget of a million seconds: every request waits its turn).

    .venv/bin/python benchmarks/bench_overload.py [--seconds 30] [--clients 4 32 128]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import requests
from bench_serving import BIN, OPEN_BUDGETS, ROOT, percentile, register_model, start_mlflow

from fsdl_tools.clients import free_port, wait_for_http


def storm(url: str, photos: list[bytes], clients: int, seconds: float, polite: bool = True) -> dict:
    """``clients`` threads posting back to back until ``seconds`` have passed; what they got. A polite
    client waits as a 503's Retry-After asks; an impolite one asks again at once."""
    lock = threading.Lock()
    answered: list[float] = []
    shed: list[int] = []
    failed: list[str] = []
    deadline = time.monotonic() + seconds

    def client(index: int) -> None:
        session = requests.Session()
        turn = index
        while time.monotonic() < deadline:
            data = photos[turn % len(photos)]
            turn += clients
            start = time.perf_counter()
            try:
                response = session.post(f"{url}/api/v1/predict", files={"image": ("x.jpg", data)}, timeout=300)
            except requests.RequestException as exc:
                with lock:
                    failed.append(type(exc).__name__)
                continue
            elapsed = (time.perf_counter() - start) * 1000
            with lock:
                if response.status_code == 200:
                    answered.append(elapsed)
                elif response.status_code == 503:
                    shed.append(int(response.headers.get("Retry-After", "0")))
                else:
                    failed.append(str(response.status_code))
            if response.status_code == 503 and polite:  # as Retry-After asks
                time.sleep(float(response.headers.get("Retry-After", "1")))

    started = time.perf_counter()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    total = len(answered) + len(shed) + len(failed)
    return {
        "clients": clients,
        "total": total,
        "answered": len(answered),
        "shed": len(shed) / total if total else 0.0,
        "failed": failed,
        "p50": statistics.median(answered) if answered else float("nan"),
        "p99": percentile(answered, 0.99) if answered else float("nan"),
        "rate": len(answered) / wall,
        "retry_after": statistics.median(shed) if shed else 0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--clients", type=int, nargs="+", default=[4, 32, 128])
    parser.add_argument("--impolite", type=int, default=32, help="then this many clients that ignore Retry-After")
    args = parser.parse_args()
    photos = [p.read_bytes() for p in sorted((ROOT / "samples" / "intel_scenes").glob("*/*.jpg"))]
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        mlflow = start_mlflow(tmp)
        try:
            register_model(tmp)
            print(f"{len(photos)} photos of 150x150, each level {args.seconds:.0f} s; one gunicorn gevent worker")
            for label, budget in (("bounded (defaults: budget 2 s)", None), ("unbounded", "1000000")):
                web_port = free_port()
                web_env = {
                    **os.environ, **OPEN_BUDGETS,
                    "FSDL_SCENES_MODEL_NAME": "bench-scenes", "FSDL_OFFLINE_WEIGHTS": "1",
                    "FSDL_DATA_DIR": str(tmp / "data"), "WEBAPP_STATE_DIR": str(tmp / f"webapp-{web_port}"),
                    "WEBAPP_PORT": str(web_port), "WEBAPP_WORKERS": "1", "WEBAPP_SECRET_KEY": "bench",
                    "WEBAPP_REVIEW_SAMPLE_RATE": "0",
                }  # fmt: skip
                if budget:
                    web_env["WEBAPP_LATENCY_BUDGET_SECONDS"] = budget
                web = subprocess.Popen(
                    [str(BIN / "gunicorn"), "-c", "python:fsdl_webapp.gunicorn_conf", "fsdl_webapp:create_app()"],
                    env=web_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                )  # fmt: skip
                try:
                    url = f"http://127.0.0.1:{web_port}"
                    wait_for_http(f"{url}/readyz", 180)
                    storm(url, photos, 2, 5)  # warm up, and let the worker measure its service time
                    print(f"\n{label}:")
                    for clients in args.clients:
                        r = storm(url, photos, clients, args.seconds)
                        print(f"  {clients:4d} clients: {r['total']:5d} requests, answered {r['answered']:5d} "
                              f"({r['rate']:4.1f}/s), p50 {r['p50']:7.0f} ms, p99 {r['p99']:7.0f} ms, "
                              f"shed {r['shed'] * 100:5.1f} % (Retry-After median {r['retry_after']} s)"
                              + (f", other failures {sorted(set(r['failed']))} x{len(r['failed'])}" if r["failed"] else ""),
                              flush=True)  # fmt: skip
                    if args.impolite:
                        r = storm(url, photos, args.impolite, args.seconds, polite=False)
                        print(f"  {args.impolite:4d} clients ignoring Retry-After: {r['total']:5d} requests, answered "
                              f"{r['answered']:5d} ({r['rate']:4.1f}/s), p50 {r['p50']:7.0f} ms, p99 {r['p99']:7.0f} ms, "
                              f"shed {r['shed'] * 100:5.1f} %", flush=True)  # fmt: skip
                finally:
                    web.terminate()
                    web.wait(timeout=30)
        finally:
            mlflow.terminate()
            mlflow.wait(timeout=30)


if __name__ == "__main__":
    main()
