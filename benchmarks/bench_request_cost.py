#!/usr/bin/env python3
"""What the defences of the public web app cost on the request path, measured in one run.

Two web apps under gunicorn, side by side, against one MLflow server and one registered model:
this tree (per-client budgets counted in SQLite, throttled logins, security headers, metadata cut
from every upload, the client's pseudonym kept) and the web app of an earlier commit without them
(default e624650, checked out in a temporary git worktree and run from its sources). The same
photos are posted to both in alternating rounds, one client: p50 and p99 of POST /api/v1/predict,
and the ratio. Two kinds of photo: the 150x150 JPEGs of the sample, and phone-sized photos
(12 MP, with EXIF, GPS, XMP and a comment) made from them. Then the metadata cut alone, in
process, per photo; with --verify-dir, it is checked over a folder of photos (the 8,741 training
photos, say) that every one decodes to the same pixels afterwards.

    .venv/bin/python benchmarks/bench_request_cost.py [--baseline e624650] [--rounds 3]
        [--verify-dir ../shared/data/intel_scenes_train_8k]
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import requests
from bench_serving import BIN, ROOT, interleaved, register_model
from PIL import Image

from fsdl_lib.images import decode_image
from fsdl_lib.metadata import strip_metadata
from fsdl_tools.clients import free_port, wait_for_http

GENEROUS = {
    name: "1000000/minute"
    for name in (
        "WEBAPP_RATE_LIMIT_PREDICT", "WEBAPP_UPLOAD_BUDGET", "WEBAPP_RATE_LIMIT_FEEDBACK", "WEBAPP_RATE_LIMIT_DEFAULT",
    )
}  # fmt: skip
"""Budgets this benchmark never reaches: every request is counted, none refused."""


def phone_photo(source: Path) -> bytes:
    """A 4032x3024 JPEG made from ``source``, with what a phone writes beside the pixels."""
    exif = Image.Exif()
    exif[0x010F], exif[0x0110], exif[0x0132], exif[0x0112] = "PhoneMaker", "Phone 15", "2026:11:30 08:15:00", 6
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2], gps[3], gps[4] = "N", (52.0, 31.0, 12.5), "E", (13.0, 24.0, 7.0)
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:Description photoshop:City="Berlin"/></x:xmpmeta>'
    buffer = io.BytesIO()
    Image.open(source).convert("RGB").resize((4032, 3024)).save(
        buffer, format="JPEG", quality=90, exif=exif, xmp=xmp, comment=b"at home"
    )
    return buffer.getvalue()


def start_webapp(tmp: Path, name: str, pythonpath: str | None) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {
        **os.environ,
        **GENEROUS,
        "FSDL_SCENES_MODEL_NAME": "bench-scenes",
        "FSDL_OFFLINE_WEIGHTS": "1",
        "FSDL_DATA_DIR": str(tmp / name / "data"),
        "WEBAPP_STATE_DIR": str(tmp / name / "webapp"),
        "WEBAPP_PORT": str(port),
        "WEBAPP_SECRET_KEY": "bench",
        "WEBAPP_REVIEW_SAMPLE_RATE": "0",
        "WEBAPP_DRIFT_INTERVAL_SECONDS": "0",
    }
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    log = (tmp / f"{name}.log").open("wb")
    proc = subprocess.Popen(
        [str(BIN / "gunicorn"), "-c", "python:fsdl_webapp.gunicorn_conf", "fsdl_webapp:create_app()"],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{url}/readyz", 240, proc)
    except RuntimeError:
        print((tmp / f"{name}.log").read_text()[-3000:], file=sys.stderr)
        raise
    return proc, url


def poster(url: str):
    session = requests.Session()

    def post(data: bytes) -> float:
        start = time.perf_counter()
        response = session.post(f"{url}/api/v1/predict", files={"image": ("x.jpg", data)}, timeout=300)
        response.raise_for_status()
        return (time.perf_counter() - start) * 1000

    return post


def verify(folder: Path) -> None:
    photos = sorted(p for p in folder.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    start, same, cut = time.perf_counter(), 0, 0
    for photo in photos:
        data = photo.read_bytes()
        stripped = strip_metadata(data)
        cut += len(data) - len(stripped)
        same += np.array_equal(np.asarray(decode_image(stripped)[0]), np.asarray(decode_image(data)[0]))
    seconds = time.perf_counter() - start
    print(
        f"\nmetadata cut over {len(photos)} photos of {folder}: {same} of {len(photos)} decode to the same pixels "
        f"afterwards; {cut / len(photos):.0f} bytes cut per photo on average ({seconds:.0f} s with the decodes)"
    )
    assert same == len(photos), "a photo decodes differently after the metadata cut"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", default="e624650", help="the commit whose web app has none of the defences")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--photos", type=int, default=40, help="150x150 sample photos per round")
    parser.add_argument("--phone-photos", type=int, default=8, help="12 MP photos with metadata per round")
    parser.add_argument("--verify-dir", type=Path, help="check the metadata cut keeps the pixels of every photo here")
    args = parser.parse_args()
    samples = sorted((ROOT / "samples" / "intel_scenes").glob("*/*.jpg"))
    small = [p.read_bytes() for p in samples[: args.photos]]
    phones = [phone_photo(p) for p in samples[:: max(1, len(samples) // args.phone_photos)][: args.phone_photos]]

    with tempfile.TemporaryDirectory(prefix="fsdl-bench-cost-") as tmp_name:
        tmp = Path(tmp_name)
        base = tmp / "baseline"
        subprocess.run(["git", "worktree", "add", "--detach", str(base), args.baseline], cwd=ROOT, check=True,
                       capture_output=True)  # fmt: skip
        mlflow_port = free_port()
        mlflow = subprocess.Popen(
            [str(BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(mlflow_port), "--workers", "1",
             "--backend-store-uri", f"sqlite:///{tmp}/mlflow.db", "--artifacts-destination", str(tmp / "artifacts")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
        )  # fmt: skip
        servers: list[subprocess.Popen[bytes]] = []
        try:
            wait_for_http(f"http://127.0.0.1:{mlflow_port}/health", 180)
            os.environ["MLFLOW_TRACKING_URI"] = f"http://127.0.0.1:{mlflow_port}"
            register_model(tmp)
            old, old_url = start_webapp(tmp, "baseline", f"{base / 'webapp' / 'src'}:{base / 'fsdl_lib' / 'src'}")
            new, new_url = start_webapp(tmp, "this-tree", None)
            servers += [old, new]
            # Make sure each is what it says: only this tree's sends a Content-Security-Policy.
            assert "Content-Security-Policy" not in requests.get(f"{old_url}/", timeout=30).headers
            assert "Content-Security-Policy" in requests.get(f"{new_url}/", timeout=30).headers
            both = {f"baseline ({args.baseline})": poster(old_url), "this tree": poster(new_url)}
            print(f"POST /api/v1/predict, 1 client, {args.rounds} alternating rounds, ResNet50 at 224 px, 2 cores")
            for label, photos in (("150x150 sample JPEGs", small), ("12 MP phone photos with metadata", phones)):
                results = interleaved(both, photos, 1, rounds=args.rounds)
                (b50, b99, _), (n50, n99, _) = results.values()
                print(
                    f"  {label} ({len(photos)} a round, {statistics.mean(map(len, photos)) / 1024:.0f} KiB on average)\n"
                    f"    baseline   p50 {b50:7.1f} ms   p99 {b99:7.1f} ms\n"
                    f"    this tree  p50 {n50:7.1f} ms   p99 {n99:7.1f} ms   "
                    f"p50 {n50 / b50:5.3f}x, p99 {n99 / b99:5.3f}x the baseline"
                )
        finally:
            for proc in (*servers, mlflow):
                proc.terminate()
                proc.wait(timeout=30)
            subprocess.run(["git", "worktree", "remove", "--force", str(base)], cwd=ROOT, capture_output=True)

    print("\nthe metadata cut alone, in this process (median of 5 per photo):")
    for label, photos in (("150x150 sample JPEG", small), ("12 MP phone photo", phones)):
        costs = []
        for data in photos:
            runs = []
            for _ in range(5):
                start = time.perf_counter()
                strip_metadata(data)
                runs.append((time.perf_counter() - start) * 1e6)
            costs.append(statistics.median(runs))
        print(f"  {label:20s} {statistics.median(costs):8.0f} µs")
    if args.verify_dir:
        verify(args.verify_dir)


if __name__ == "__main__":
    main()
