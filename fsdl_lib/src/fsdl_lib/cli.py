"""The ``fsdl`` command: settings, weights and data seeding for the platform's scripts."""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
from pathlib import Path

from fsdl_lib import config


def _env(args: argparse.Namespace) -> int:
    if args.doc:
        for name, default, doc in config.Settings.variables():
            print(f"{name} (default {default or '(empty)'})\n    {doc}")
        return 0
    for name, value in config.load_settings().as_environment().items():
        print(f"export {name}={shlex.quote(value)}")
    return 0


def _weights_cached(args: argparse.Namespace) -> int:
    from fsdl_lib.features import weights_cached, weights_file

    settings = config.load_settings()
    cached = weights_cached(settings.torch_home)
    if not args.quiet:
        state = "cached" if cached else "not cached"
        print(f"ResNet50 weights {state} at {weights_file(settings.torch_home)}")
    return 0 if cached else 1


def _download_weights(args: argparse.Namespace) -> int:
    from fsdl_lib.features import download_weights

    print(f"weights ready at {download_weights(config.load_settings().torch_home)}")
    return 0


def _export_graph(args: argparse.Namespace) -> int:
    from fsdl_lib.features import FeatureExtractor
    from fsdl_lib.graph import export_graph

    extractor = FeatureExtractor.from_settings(config.load_settings())
    digest = export_graph(extractor, args.output)
    print(f"backbone {extractor.id} exported to {args.output} (sha256 {digest})")
    return 0


def _seed(args: argparse.Namespace) -> int:
    from fsdl_lib.seeding import seed_file, seed_scenes

    settings = config.load_settings()
    if args.wine and seed_file(args.wine, settings.wine_csv):
        print(f"Copied the wine data to {settings.wine_csv}.")
    result = seed_scenes(args.sample, settings.scenes_raw_dir, test_per_class=args.test_per_class)
    if result.seeded:
        print(
            f"No scene dataset found: seeded {result.train} training and {result.test} test images "
            f"from the sample photos in {args.sample} into {settings.scenes_raw_dir}."
        )
        print("For real training data run: .venv/bin/python scripts/download_intel_scenes.py --subset")
    else:
        print(f"Scene dataset present, not seeding ({result.reason}).")
    return 0


def _compute_pool(args: argparse.Namespace) -> int:
    from fsdl_lib.config import load_settings
    from fsdl_lib.resources import COMPUTE_POOL, COMPUTE_POOL_DESCRIPTION

    print(shlex.join([COMPUTE_POOL, str(load_settings().compute_pool_slots), COMPUTE_POOL_DESCRIPTION]))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fsdl", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    env = sub.add_parser("env", help="print the resolved settings as shell exports")
    env.add_argument("--doc", action="store_true", help="describe every variable instead")
    env.set_defaults(func=_env)

    cached = sub.add_parser("weights-cached", help="exit 0 if the ImageNet weights are cached")
    cached.add_argument("-q", "--quiet", action="store_true")
    cached.set_defaults(func=_weights_cached)

    download = sub.add_parser("download-weights", help="download the pinned ImageNet weights")
    download.set_defaults(func=_download_weights)

    graph = sub.add_parser("export-graph", help="export the configured backbone, weights included, as an ONNX graph")
    graph.add_argument("output", type=Path, help="the .onnx file to write")
    graph.set_defaults(func=_export_graph)

    seed = sub.add_parser("seed", help="seed the scene splits from the sample photos if empty")
    seed.add_argument("--sample", type=Path, default=Path("samples/intel_scenes"))
    seed.add_argument("--test-per-class", type=int, default=5)
    seed.add_argument("--wine", type=Path, help="copy this wine CSV into the data folder if it has none")
    seed.set_defaults(func=_seed)

    pool = sub.add_parser(
        "compute-pool",
        help="print the name, slots and description of Airflow's pool for training threads (for `airflow pools set`)",
    )
    pool.set_defaults(func=_compute_pool)

    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from fsdl_lib.exceptions import FsdlError

    try:
        return int(args.func(args))
    except (FsdlError, FileNotFoundError) as exc:
        print(f"fsdl {args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
