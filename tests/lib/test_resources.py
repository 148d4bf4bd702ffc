"""Thread pools sized to a task's share of the machine (fsdl_lib.resources)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from fsdl_lib.resources import threads_per_slot


@pytest.mark.parametrize(("slots", "cores", "threads"), [(2, 2, 1), (4, 2, 1), (1, 2, 2), (4, 16, 4), (3, 16, 5)])
def test_a_task_gets_the_cores_divided_by_the_slots(slots, cores, threads):
    assert threads_per_slot(slots, cores) == threads
    assert threads * slots <= max(cores, slots)


PROBE = """
import json
from fsdl_lib.resources import limit_threads
limit_threads(1)
import torch
from fsdl_lib.features import FeatureExtractor
FeatureExtractor(offline_weights=True, image_size=64, device="cpu")
from threadpoolctl import threadpool_info
print(json.dumps({"pools": [p["num_threads"] for p in threadpool_info()], "torch": torch.get_num_threads()}))
"""


def test_limit_threads_caps_blas_openmp_and_torch_pools():
    """In a fresh process, as in a task: every loaded pool (numpy's BLAS, scikit-learn's OpenMP)
    and torch's, loaded after the limit was set, run one thread."""
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=300)
    found = json.loads(out.stdout.strip().splitlines()[-1])
    assert found["pools"], "threadpoolctl found no thread pool to limit"
    assert set(found["pools"]) == {1}
    assert found["torch"] == 1


def test_the_compute_pool_has_a_slot_per_core_unless_configured():
    from fsdl_lib.resources import available_cores, compute_slots

    assert compute_slots() == available_cores()
    assert compute_slots(0) == available_cores()
    assert compute_slots(12) == 12


@pytest.mark.parametrize(("slots", "parts", "each"), [(2, 6, 1), (16, 6, 2), (12, 6, 2), (1, 1, 1), (8, 1, 8)])
def test_a_task_of_several_running_at_once_takes_its_share_of_the_slots(slots, parts, each):
    from fsdl_lib.resources import share

    assert share(slots, parts) == each
    assert each * min(parts, slots) <= slots


@pytest.mark.parametrize(
    ("files", "cores"),
    [
        ({"cpu.max": "max 100000\n"}, 4),
        ({"cpu.max": "100000 100000\n"}, 1),
        ({"cpu.max": "150000 100000\n"}, 2),
        ({"cpu.max": "800000 100000\n"}, 4),
        ({"cpu.max": "garbage"}, 4),
        ({"cpu/cpu.cfs_quota_us": "100000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 1),  # cgroup v1
        ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, 4),
        ({}, 4),
    ],
)
def test_a_cgroup_cpu_quota_caps_the_cores_as_the_affinity_does(tmp_path, monkeypatch, files, cores):
    """compose's `cpus: 1` leaves the affinity at every core: the cgroup's quota says one core's worth."""
    import os

    from fsdl_lib.resources import available_cores

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert available_cores(tmp_path) == cores
