#!/usr/bin/env python3
"""Feature-extraction throughput, measured in one run on the sample photos.

Compares FeatureExtractor.extract (decode excluded, preprocessing included) with:
  * the raw model forward on the same, already preprocessed images at the same resolution;
  * a batch-1 loop without inference mode (how the original project extracted);
  * the machine's limit: measured float32 GEMM peak / ResNet50's FLOPs per image.
Then sweeps the batch size and the input resolution. Targets: >= 0.85x the raw forward and
>= 0.55 of the limit.

    .venv/bin/python benchmarks/bench_extraction.py [--images 48] [--device cpu]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from fsdl_lib.features import FeatureExtractor
from fsdl_lib.images import load_image

ROOT = Path(__file__).resolve().parent.parent
RESNET50_GFLOPS_224 = 2 * 4.09  # 4.09 G multiply-adds per 224x224 image


def timed(fn, repeat: int = 1) -> float:
    """Best wall time of ``repeat`` calls (after one warm-up call)."""
    fn()
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def gemm_peak_gflops(device: torch.device, n: int = 2048) -> float:
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)

    def run() -> None:
        for _ in range(5):
            torch.mm(a, b)
        if device.type == "cuda":
            torch.cuda.synchronize()

    return 5 * 2 * n**3 / timed(run, repeat=3) / 1e9


def sample_f1(fx: FeatureExtractor) -> float:
    import tempfile

    from sklearn.metrics import f1_score

    from fsdl_lib.candidates import CANDIDATES, build_pipeline, fit
    from fsdl_lib.feature_store import FeatureStore
    from fsdl_lib.seeding import seed_scenes

    with tempfile.TemporaryDirectory() as tmp:
        seed_scenes(ROOT / "samples" / "intel_scenes", Path(tmp))
        train, _ = FeatureStore(Path(tmp) / "train.npz").update(Path(tmp) / "train", fx)
        test, _ = FeatureStore(Path(tmp) / "test.npz").update(Path(tmp) / "test", fx)
    model = build_pipeline(CANDIDATES["logreg_c1"])
    fit(model, train.features, train.labels)
    return float(f1_score(test.labels, model.predict(test.features), average="weighted"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=48)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()

    paths = sorted((ROOT / "samples" / "intel_scenes").glob("*/*.jpg"))[: args.images]
    images = [load_image(p) for p in paths]
    n = len(images)
    fx = FeatureExtractor(offline_weights=True, image_size=224, device=args.device)
    device = fx.device
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {device}, {n} images of 150x150")

    batch = fx.preprocessor.batch(images).to(device)
    bs = fx.batch_size

    def raw_forward() -> None:
        with torch.inference_mode():
            for start in range(0, n, bs):
                fx.model(batch[start : start + bs])

    def extractor() -> None:
        fx.extract(images)

    def original_way() -> None:
        for i in range(n):
            fx.model(batch[i : i + 1]).detach()

    raw = n / timed(raw_forward)
    ours = n / timed(extractor)
    original = n / timed(original_way)
    peak = gemm_peak_gflops(device)
    limit = peak / RESNET50_GFLOPS_224
    print(f"\nbatch size {bs} at 224x224:")
    print(f"  raw forward            {raw:7.2f} img/s")
    print(f"  FeatureExtractor       {ours:7.2f} img/s   {ours / raw:5.2f}x raw forward   (target >= 0.85)")
    print(f"  batch 1, grad enabled  {original:7.2f} img/s   extractor is {ours / original:5.2f}x faster")
    print(
        f"  GEMM peak {peak:6.1f} GFLOP/s -> limit {limit:6.2f} img/s; extractor at {ours / limit:4.2f} of it (target >= 0.55)"
    )

    print("\nbatch size sweep at 224x224 (FeatureExtractor):")
    for size in (1, 4, 8, 16, 32):
        fx.batch_size = size
        print(f"  batch {size:2d}: {n / timed(extractor):7.2f} img/s")
    fx.batch_size = bs

    print("\ninput resolution (the photos are 150x150; batch size as above); F1 of a scaled LogisticRegression")
    print("trained on the 90 seeded training photos and scored on the 30 test photos (random weights):")
    for side in (150, 224):
        other = FeatureExtractor(offline_weights=True, image_size=side, device=args.device, batch_size=bs)
        rate = n / timed(lambda other=other: other.extract(images))
        side_limit = peak / (RESNET50_GFLOPS_224 * (side / 224) ** 2)
        print(
            f"  {side}x{side}: {rate:7.2f} img/s ({rate / side_limit:4.2f} of its limit {side_limit:6.2f} img/s), "
            f"test F1 {sample_f1(other):.3f}"
        )


if __name__ == "__main__":
    main()
