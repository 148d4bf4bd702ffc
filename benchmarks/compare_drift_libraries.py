#!/usr/bin/env python3
"""fsdl_lib.drift's MMD test against frouros's on the same data: statistic, p-value, time, memory.

frouros 0.9 pins NumPy < 2.2 and SciPy < 1.15, so it cannot live in the platform's venv; install it
into a folder of its own and point this script at it (it runs there in a child process):

    .venv/bin/pip install --target /tmp/frouros frouros==0.9.0
    .venv/bin/python benchmarks/compare_drift_libraries.py --frouros /tmp/frouros

500 reference and 200 window vectors of 2,048 dimensions (ResNet50's width), a small mean shift,
500 permutations, the same Gaussian kernel (bandwidth from the median pairwise distance).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

CHILD = r"""
import json, resource, sys, time
import numpy as np
rng = np.random.default_rng(0)
x = rng.normal(size=(500, 2048)).astype(np.float32)
y = rng.normal(0.05, 1.0, size=(200, 2048)).astype(np.float32)
start = time.perf_counter()
if sys.argv[1] == "frouros":
    import functools
    from scipy.spatial.distance import pdist
    from frouros.callbacks.batch import PermutationTestDistanceBased
    from frouros.detectors.data_drift import MMD
    from frouros.utils.kernels import rbf_kernel
    imported = time.perf_counter() - start
    sigma = float(np.sqrt(np.median(pdist(np.concatenate([x, y]), "sqeuclidean")) / 2))
    detector = MMD(kernel=functools.partial(rbf_kernel, sigma=sigma), callbacks=[
        PermutationTestDistanceBased(num_permutations=500, random_state=0, num_jobs=1, name="perm")])
    detector.fit(X=x)
    start = time.perf_counter()
    distance, logs = detector.compare(X=y)
    statistic, p_value = distance.distance, logs["perm"]["p_value"]
else:
    from fsdl_lib.drift import mmd_test
    imported = time.perf_counter() - start
    start = time.perf_counter()
    result = mmd_test(x, y, permutations=500)
    statistic, p_value = result.statistic, result.p_value
print(json.dumps({"import_s": imported, "test_s": time.perf_counter() - start, "mmd": float(statistic),
                  "p_value": float(p_value), "max_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "numpy": np.__version__}))
"""


def run(which: str, path: str | None) -> dict:
    env = {**os.environ, **({"PYTHONPATH": path} if path else {})}
    out = subprocess.run([sys.executable, "-c", CHILD, which], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frouros", help="a folder where frouros is installed (pip install --target)")
    args = parser.parse_args()
    ours = run("ours", None)
    rows = {"fsdl_lib.drift": ours}
    if args.frouros:
        rows["frouros 0.9.0"] = run("frouros", args.frouros)
    print(f"{'':16} {'import s':>9} {'test s':>8} {'MMD²':>10} {'p-value':>8} {'max RSS MiB':>12}  NumPy")
    for name, row in rows.items():
        print(
            f"{name:16} {row['import_s']:>9.2f} {row['test_s']:>8.2f} {row['mmd']:>10.6f} {row['p_value']:>8.4f} "
            f"{row['max_rss_mib']:>12.0f}  {row['numpy']}"
        )
    if args.frouros:
        theirs = rows["frouros 0.9.0"]
        print(
            f"same statistic: {abs(theirs['mmd'] - ours['mmd']) < 1e-6}; time ratio {theirs['test_s'] / ours['test_s']:.0f}x, "
            f"memory ratio {theirs['max_rss_mib'] / ours['max_rss_mib']:.0f}x"
        )


if __name__ == "__main__":
    main()
