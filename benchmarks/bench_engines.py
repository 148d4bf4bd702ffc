#!/usr/bin/env python3
"""The backbone on three engines, side by side in one run: torch eager, torch frozen (TorchScript
traced, frozen and optimised for inference: oneDNN's fused convolutions), and the exported ONNX
graph on ONNX Runtime (every graph optimisation).

Each engine runs in a process of its own, on the same RGB bytes (decoding and resizing are the same
for all and are left out), batch 8, with the same threads. Printed per engine: images per second,
their share of this machine's limit (measured float32 GEMM peak over ResNet50's FLOPs per image), the
process's resident memory once it is ready and at its peak, and how far its features are from torch
eager's (the reference): the largest difference over the reference's largest magnitude, worst image.
Then the classifier check: a scaled LogisticRegression trained on eager features of the training
photos must give the same predictions on the test photos from every engine's features.

    .venv/bin/python benchmarks/bench_engines.py --photos ../shared/data/intel_scenes_train_8k
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RESNET50_GFLOPS_224 = 2 * 4.09  # 4.09 G multiply-adds per 224x224 image
ENGINES = ("torch-eager", "torch-frozen", "onnxruntime")


def status_mib(field: str) -> float:
    """A memory figure of this process from /proc (VmRSS: resident now; VmHWM: its peak since exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise LookupError(field)


def load_pixels(paths: list[Path], size: int) -> np.ndarray:
    from fsdl_lib.images import load_image
    from fsdl_lib.preprocessing import pixel_batch

    return pixel_batch([load_image(p) for p in paths], size)


def build(engine: str, graph: Path, size: int, threads: int):
    """``engine``'s forward function on a (N, size, size, 3) uint8 batch; torch is imported only by the torch engines."""
    if engine == "onnxruntime":
        from fsdl_lib.graph import GraphExtractor

        return GraphExtractor(graph, threads=threads).forward
    import torch

    from fsdl_lib.features import FeatureExtractor

    torch.set_num_threads(threads)
    module = FeatureExtractor(offline_weights=True, image_size=size, device="cpu").pixels_module()
    if engine == "torch-frozen":
        with torch.inference_mode():
            example = torch.zeros((8, size, size, 3), dtype=torch.uint8)
            module = torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.trace(module, example)))

    def forward(batch: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return module(torch.from_numpy(batch)).numpy()

    return forward


def run_engine(args: argparse.Namespace) -> None:
    """In a process of its own: time one engine on the test photos; write its figures and features."""
    pixels = np.load(args.pixels)
    start = time.perf_counter()
    forward = build(args.engine, args.graph, args.size, args.threads)
    forward(pixels[: args.batch])  # warm-up: the first call plans and allocates
    ready = time.perf_counter() - start
    rss_ready = status_mib("VmRSS")
    best = float("inf")
    for _ in range(args.passes):
        began = time.perf_counter()
        features = np.concatenate([forward(pixels[i : i + args.batch]) for i in range(0, len(pixels), args.batch)])
        best = min(best, time.perf_counter() - began)
    np.save(args.out.with_suffix(".npy"), features.astype(np.float32))
    torch_loaded = "torch" in sys.modules
    args.out.write_text(json.dumps({
        "rate": len(pixels) / best, "ready_s": ready, "rss_ready": rss_ready,
        "rss_peak": status_mib("VmHWM"), "torch_loaded": torch_loaded,
    }))  # fmt: skip


def photos_of(folder: Path, per_class: int, skip: int) -> tuple[list[Path], list[str]]:
    paths, labels = [], []
    for label_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
        for photo in sorted(label_dir.glob("*.jpg"))[skip : skip + per_class]:
            paths.append(photo)
            labels.append(label_dir.name)
    return paths, labels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--photos", type=Path, default=ROOT / "samples" / "intel_scenes", help="class folders of photos"
    )
    parser.add_argument("--train-per-class", type=int, default=100)
    parser.add_argument("--test-per-class", type=int, default=50, help="50: 300 test photos over the six classes")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--passes", type=int, default=2, help="timed passes per engine; the best counts")
    parser.add_argument("--threads", type=int, default=0, help="0: every core this process may use")
    parser.add_argument("--engine", choices=ENGINES, help=argparse.SUPPRESS)
    parser.add_argument("--pixels", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--graph", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.engine:
        run_engine(args)
        return

    import torch
    from bench_extraction import gemm_peak_gflops
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from fsdl_lib.features import FeatureExtractor
    from fsdl_lib.graph import export_graph, max_relative_difference
    from fsdl_lib.resources import available_cores

    threads = args.threads or available_cores()
    torch.set_num_threads(threads)
    test_paths, test_labels = photos_of(args.photos, args.test_per_class, 0)
    train_paths, train_labels = photos_of(args.photos, args.train_per_class, args.test_per_class)
    print(f"{len(train_paths)} training and {len(test_paths)} test photos from {args.photos}, "
          f"{args.size} px, batch {args.batch}, {threads} threads, torch {torch.__version__}", flush=True)  # fmt: skip
    reference = FeatureExtractor(offline_weights=True, image_size=args.size, device="cpu")
    with tempfile.TemporaryDirectory(prefix="fsdl-bench-engines-") as tmp_name:
        tmp = Path(tmp_name)
        began = time.perf_counter()
        export_graph(reference, tmp / "backbone.onnx")
        print(f"exported {reference.id} in {time.perf_counter() - began:.1f} s "
              f"({(tmp / 'backbone.onnx').stat().st_size / 2**20:.0f} MiB)", flush=True)  # fmt: skip
        test_pixels = load_pixels(test_paths, args.size)
        np.save(tmp / "test.npy", test_pixels)
        module = reference.pixels_module()
        with torch.inference_mode():
            train = np.concatenate([module(torch.from_numpy(b)).numpy() for b in np.array_split(
                load_pixels(train_paths, args.size), max(1, len(train_paths) // args.batch))])  # fmt: skip
        results = {}
        for engine in ENGINES:
            out = tmp / f"{engine}.json"
            subprocess.run(
                [sys.executable, __file__, "--engine", engine, "--pixels", str(tmp / "test.npy"),
                 "--graph", str(tmp / "backbone.onnx"), "--out", str(out), "--size", str(args.size),
                 "--batch", str(args.batch), "--threads", str(threads), "--passes", str(args.passes)],
                check=True, cwd=Path(__file__).parent,
            )  # fmt: skip
            results[engine] = {**json.loads(out.read_text()), "features": np.load(out.with_suffix(".npy"))}
            print(f"  {engine}: {results[engine]['rate']:.2f} img/s", flush=True)

    peak = gemm_peak_gflops(torch.device("cpu"))
    limit = peak / (RESNET50_GFLOPS_224 * (args.size / 224) ** 2)
    eager = results["torch-eager"]
    classifier = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    classifier.fit(train, train_labels)
    expected = classifier.predict(eager["features"])
    print(f"\nGEMM peak {peak:.1f} GFLOP/s: the limit is {limit:.2f} img/s at {args.size} px")
    print(f"{'engine':14s} {'img/s':>7s} {'x eager':>8s} {'of limit':>9s} {'ready MiB':>10s} {'peak MiB':>9s} "
          f"{'max diff':>9s} {'same predictions':>17s} {'torch loaded':>13s}")  # fmt: skip
    for engine, r in results.items():
        diff = max_relative_difference(r["features"], eager["features"])
        same = int((classifier.predict(r["features"]) == expected).sum())
        print(f"{engine:14s} {r['rate']:7.2f} {r['rate'] / eager['rate']:7.2f}x {r['rate'] / limit:9.2f} "
              f"{r['rss_ready']:10.0f} {r['rss_peak']:9.0f} {diff:9.1e} {same:>9d} of {len(expected):<4d}"
              f"{'yes' if r['torch_loaded'] else 'no':>13s}")  # fmt: skip
    print(
        f"\ntest F1 (weighted) of the classifier on eager features: "
        f"{f1_score(test_labels, expected, average='weighted'):.3f} (random weights: the check is agreement)"
    )


if __name__ == "__main__":
    main()
