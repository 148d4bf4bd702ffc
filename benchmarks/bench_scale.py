#!/usr/bin/env python3
"""The scene workload on thousands of real photos, measured in one run.

    .venv/bin/python benchmarks/bench_scale.py --photos ../shared/data/intel_scenes_train_8k \\
        [--work /tmp/fsdl-scale] [--sizes 1000 4000 0] [--plot benchmarks/figures/fit_times.png]

1. Splits the photos into train and test (50 per class, by content hash, as ``fsdl seed`` does),
   in ``--work`` (never in the repository).
2. Extracts their features at 224 px and at the photos' native 150 px with every core, as
   ``create_dataset`` does (it holds every slot of the compute pool), with the engine it uses on a
   CPU: the exported backbone graph on ONNX Runtime (``--engine torch``: the eager reference). A cache
   left in ``--work`` by an earlier run is reused and reported as such; ``--fresh`` measures again.
3. Times what ``train_candidate`` does for each candidate (a fit on the validation split, a refit
   on all of train) on stratified subsets of the training split (``--sizes``, 0 = all), with one
   thread per candidate: what each of the two slots gets on two cores. Reports test F1, solver
   iterations and convergence, and plots fit time against training size.
4. The first model's critical path on two slots: extraction, then the measured candidate times
   packed longest first onto the slots, against the 15-minute target (the stack's own figure, with
   Airflow's overhead, comes from ``bench_flywheel.py --photos``).
5. The refit path after feedback: the served candidate refit on all of train plus 30 new photos,
   warm-started from the served model, against the same fit from scratch.
6. The drift reference every training run logs beside its model: time and size, against the fit.
"""

from __future__ import annotations

import argparse
import heapq
import json
import logging
import os
import time
from pathlib import Path

import numpy as np

from fsdl_lib.candidates import CANDIDATES, build_pipeline, fit, warm_start
from fsdl_lib.feature_store import FeatureSet, FeatureStore
from fsdl_lib.features import FeatureExtractor
from fsdl_lib.resources import available_cores, limit_threads
from fsdl_lib.scenes.training import classification_metrics, validation_split
from fsdl_lib.seeding import seed_scenes

ROOT = Path(__file__).resolve().parent.parent
TARGET_FIRST_MODEL = 15 * 60


def extract(work: Path, size: int, fresh: bool, engine: str = "graph") -> tuple[dict[str, FeatureSet], float | None]:
    """Both splits' features at ``size`` px; the extraction time, or None if they were cached."""
    limit_threads(available_cores())  # create_dataset holds every slot of the compute pool
    extractor = FeatureExtractor(offline_weights=True, image_size=size)
    if engine == "graph":  # exported once, as the DAGs' backbone_graph task does (not counted)
        from fsdl_lib.graph import GraphExtractor, export_graph

        graph = work / f"backbone_{size}.onnx"
        if not graph.is_file():
            export_graph(extractor, graph)
        extractor = GraphExtractor(graph, expected_id=extractor.id)
    splits, seconds, extracted = {}, 0.0, 0
    for split in ("test", "train"):
        store = FeatureStore(work / f"features_{size}_{split}.npz")
        if fresh and store.exists():
            store.path.unlink()
        start = time.perf_counter()
        splits[split], report = store.update(work / "raw" / split, extractor)
        seconds += time.perf_counter() - start
        extracted += report.extracted
    return splits, (seconds if extracted else None)


def subset(features: FeatureSet, size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A stratified random ``size`` of the split (all of it for 0)."""
    x, y = features.features, features.labels
    if size <= 0 or size >= len(y):
        return x, y
    from sklearn.model_selection import train_test_split

    x_part, _, y_part, _ = train_test_split(x, y, train_size=size, random_state=seed, stratify=y)
    return x_part, y_part


def time_candidate(name: str, x: np.ndarray, y: np.ndarray, test: FeatureSet) -> dict:
    """What train_candidate does: a validation fit, a refit on all of ``x``, scores."""
    from types import SimpleNamespace

    x_fit, x_val, y_fit, y_val = validation_split(SimpleNamespace(features=x, labels=y))
    first_pipeline = build_pipeline(CANDIDATES[name])
    first = fit(first_pipeline, x_fit, y_fit)
    start = time.perf_counter()
    val_f1 = classification_metrics(y_val, first_pipeline.predict(x_val))["f1"]
    predict_val = time.perf_counter() - start
    model = build_pipeline(CANDIDATES[name])
    final = fit(model, x, y)
    start = time.perf_counter()
    test_f1 = classification_metrics(test.labels, model.predict(test.features))["f1"]
    predict_test = time.perf_counter() - start
    return {
        "candidate": name,
        "images": len(y),
        "seconds": first.seconds + final.seconds + predict_val + predict_test,
        "fit": first.seconds,
        "refit": final.seconds,
        "iterations": final.iterations,
        "converged": first.converged and final.converged,
        "val_f1": val_f1,
        "test_f1": test_f1,
    }


def pack(seconds: list[float], slots: int) -> float:
    """Wall time of jobs of these durations on ``slots`` slots, longest first (the makespan)."""
    finish = [0.0] * slots
    for job in sorted(seconds, reverse=True):
        heapq.heapreplace(finish, finish[0] + job)
    return max(finish)


def refit_after_feedback(train: FeatureSet, test: FeatureSet, name: str, new: int = 30) -> dict:
    """The served candidate refit on train + ``new`` photos: warm start (the served scaler and PCA,
    its coefficients to start) against the whole pipeline from scratch, as the full grid fits it."""
    order = np.random.default_rng(1).permutation(len(train.labels))
    old = order[new:]  # the ``new`` left out play the feedback merged since the served model
    served = build_pipeline(CANDIDATES[name])
    fit(served, train.features[old], train.labels[old])
    x, y = train.features, train.labels
    out: dict = {"candidate": name, "images": len(y), "new": new}
    for how in ("scratch", "warm"):
        model = build_pipeline(CANDIDATES[name])
        kept = False
        if how == "warm":
            warm = warm_start(CANDIDATES[name], served, y)
            kept = not isinstance(warm, str)
            model = warm if kept else model
            out["warm_start"] = "yes" if kept else warm
        report = fit(model, x, y, classifier_only=kept)
        out[how] = {
            "seconds": report.seconds,
            "iterations": report.iterations,
            "converged": report.converged,
            "test_f1": classification_metrics(test.labels, model.predict(test.features))["f1"],
        }
    return out


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name in CANDIDATES:
        points = sorted((r["images"], r["seconds"]) for r in rows if r["candidate"] == name)
        ax.plot(*zip(*points, strict=True), marker="o", label=name)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("training images")
    ax.set_ylabel("seconds (validation fit + refit + scoring), 1 thread")
    ax.set_title("Candidate training time on ResNet50 features, 2-core machine")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def drift_reference(train: FeatureSet, test: FeatureSet, candidate: str) -> dict:
    """6. What a training run adds for drift monitoring: the reference it logs beside its model."""
    from fsdl_lib.drift import Reference
    from fsdl_lib.inference import top_probability

    model = build_pipeline(CANDIDATES[candidate])
    start = time.perf_counter()
    fit(model, train.features, train.labels)
    fit_seconds = time.perf_counter() - start
    start = time.perf_counter()
    data = Reference.build(train.features, train.labels, top_probability(model, test.features)).to_bytes()
    seconds = time.perf_counter() - start
    f1 = classification_metrics(test.labels, model.predict(test.features))["f1"]
    return {"seconds": seconds, "mib": len(data) / 2**20, "fit_seconds": fit_seconds, "test_f1": f1}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=Path, required=True, help="<class>/<photo>.jpg folders of real photos")
    parser.add_argument("--work", type=Path, default=Path("/tmp/fsdl-scale"))
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 4000, 0])
    parser.add_argument("--test-per-class", type=int, default=50)
    parser.add_argument("--fresh", action="store_true", help="extract again even where a cache exists")
    parser.add_argument("--plot", type=Path, default=ROOT / "benchmarks" / "figures" / "fit_times.png")
    parser.add_argument("--skip-150", action="store_true", help="skip the 150 px extraction")
    parser.add_argument("--engine", choices=("graph", "torch"), default="graph", help="the extraction engine")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if ROOT in args.work.resolve().parents or args.work.resolve() == ROOT:
        parser.error("--work must be outside the repository (the photos are not to be copied into it)")

    seed_scenes(args.photos, args.work / "raw", test_per_class=args.test_per_class)
    n_train = len(list((args.work / "raw" / "train").glob("*/*")))
    n_test = len(list((args.work / "raw" / "test").glob("*/*")))
    print(f"{n_train} training and {n_test} test photos from {args.photos}; {available_cores()} cores", flush=True)

    features, extraction = extract(args.work, 224, args.fresh, args.engine)
    train, test = features["train"], features["test"]
    total = len(train) + len(test)
    if extraction is None:
        print("224 px: features cached by an earlier run (--fresh measures the extraction)")
    else:
        print(f"224 px: {total} images extracted in {extraction:.0f} s ({total / extraction:.1f} img/s)", flush=True)

    limit_threads(1)  # each candidate's share of two cores
    rows = []
    for size in args.sizes:
        x, y = subset(train, size)
        for name in CANDIDATES:
            row = time_candidate(name, x, y, test)
            rows.append(row)
            print(
                f"  {name:10s} {row['images']:5d} images: {row['seconds']:7.1f} s "
                f"(fit {row['fit']:.1f} + refit {row['refit']:.1f}), test F1 {row['test_f1']:.3f}, "
                f"iterations {row['iterations']}, {'converged' if row['converged'] else 'NOT converged'}",
                flush=True,
            )
    full = [r for r in rows if r["images"] == len(train)]
    if full and extraction is not None:
        candidates = pack([r["seconds"] for r in full], 2)
        first_model = extraction + candidates
        print(
            f"\nfirst model, critical path on 2 slots: extraction {extraction:.0f} s + candidates {candidates:.0f} s "
            f"= {first_model:.0f} s = {first_model / TARGET_FIRST_MODEL:.2f} of the 15-minute target"
        )
    best = max(full, key=lambda r: r["val_f1"]) if full else None
    if best:
        print(f"best on validation at {len(train)} images: {best['candidate']}, test F1 {best['test_f1']:.3f}")
        refit = refit_after_feedback(train, test, best["candidate"])
        scratch, warm = refit["scratch"], refit["warm"]
        print(
            f"refit of {refit['candidate']} on {refit['images']} images after {refit['new']} new ones: "
            f"from scratch {scratch['seconds']:.1f} s ({scratch['iterations']} iterations, F1 {scratch['test_f1']:.3f}), "
            f"warm start {warm['seconds']:.1f} s ({warm['iterations']} iterations, F1 {warm['test_f1']:.3f}): "
            f"{scratch['seconds'] / max(warm['seconds'], 1e-9):.1f}x faster"
        )
        rows.append({"refit": refit})
        reference = drift_reference(train, test, best["candidate"])
        print(
            f"drift reference of {best['candidate']} (500 training features, class counts, {len(test)} test "
            f"confidences): built and serialised in {reference['seconds']:.2f} s, {reference['mib']:.1f} MiB, "
            f"{100 * reference['seconds'] / reference['fit_seconds']:.1f} % of the model's own fit "
            f"({reference['fit_seconds']:.1f} s, test F1 {reference['test_f1']:.3f})"
        )
        rows.append({"drift_reference": reference})

    if not args.skip_150:
        native, seconds150 = extract(args.work, 150, args.fresh, args.engine)
        limit_threads(1)
        if best:
            row = time_candidate(best["candidate"], native["train"].features, native["train"].labels, native["test"])
            timing = "cached" if seconds150 is None else f"{seconds150:.0f} s ({total / seconds150:.1f} img/s)"
            print(
                f"150 px: extraction {timing}; {best['candidate']} test F1 {row['test_f1']:.3f} "
                f"(224 px: {best['test_f1']:.3f}), its training {row['seconds']:.1f} s"
            )
            rows.append({"native_150": {**row, "extraction": seconds150}})

    plot([r for r in rows if "candidate" in r and "seconds" in r], args.plot)
    print(f"\nplot: {args.plot}")
    (args.work / "results.json").write_text(json.dumps(rows, indent=1))
    print(f"every figure: {args.work / 'results.json'}")
    os.sync()


if __name__ == "__main__":
    main()
