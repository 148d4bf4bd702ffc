"""How many threads a task may use, so that tasks sharing a machine do not oversubscribe it.

An executor runs several tasks at once (its *slots*); each task's BLAS, OpenMP and torch pools
default to every core, so on two cores four tasks ran sixteen threads. The compute-heavy tasks
therefore run in one Airflow pool, :data:`COMPUTE_POOL`, with one slot per core
(:func:`compute_slots`): a task takes as many pool slots as the threads it will run, so the threads
of all tasks running at once never exceed the cores. Feature extraction takes every slot (it runs
alone, on every core); each candidate takes its share. A task outside the pool falls back to the
cores divided by the executor's slots. ``FSDL_TASK_THREADS`` overrides both.
"""

from __future__ import annotations

import logging
import math
import os
import sys
from pathlib import Path
from typing import Final

log = logging.getLogger(__name__)

COMPUTE_POOL: Final = "fsdl_compute"
"""The Airflow pool of the tasks that run BLAS, OpenMP or torch threads: one slot per thread."""
COMPUTE_POOL_DESCRIPTION: Final = "Threads of the training tasks (feature extraction, candidates): one slot per core"

THREAD_VARIABLES: Final = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
_limit: int | None = None


CGROUP: Final = Path("/sys/fs/cgroup")
"""Where this process's cgroup shows its CPU quota: what ``docker run --cpus`` and compose's ``cpus`` set."""


def cpu_quota(cgroup: Path = CGROUP) -> float | None:
    """Cores' worth of CPU time the cgroup may use (cgroup v2 ``cpu.max``, else v1's CFS quota); None: no limit."""
    try:
        if (cgroup / "cpu.max").exists():
            limit, period = (cgroup / "cpu.max").read_text().split()[:2]
        else:
            limit = (cgroup / "cpu" / "cpu.cfs_quota_us").read_text().strip()
            period = (cgroup / "cpu" / "cpu.cfs_period_us").read_text().strip()
        quota, length = int(limit), int(period)
    except (OSError, ValueError):  # absent, "max", or unreadable: no limit we can tell
        return None
    return quota / length if quota > 0 and length > 0 else None


def available_cores(cgroup: Path = CGROUP) -> int:
    """The cores this process may run on: its CPU affinity (which taskset and ``cpuset`` narrow), and
    no more than its cgroup's CPU quota (``cpus: 1`` leaves the affinity at every core but lets the
    group run one core's worth of time: more threads than that only wait for each other)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    quota = cpu_quota(cgroup)
    return cores if quota is None else max(1, min(cores, math.ceil(quota)))


def compute_slots(configured: int = 0) -> int:
    """Slots of :data:`COMPUTE_POOL`: ``FSDL_COMPUTE_SLOTS`` where set (the cores of every worker
    together, when workers run on several machines), else this machine's cores."""
    return configured if configured > 0 else available_cores()


def share(slots: int, parts: int) -> int:
    """Pool slots (threads) of one of ``parts`` tasks that run at once in ``slots``: at least one."""
    return max(1, slots // max(1, parts))


def threads_per_slot(slots: int, cores: int | None = None) -> int:
    """A task's share of the cores when ``slots`` tasks run at once: at least one thread."""
    cores = available_cores() if cores is None else cores
    return max(1, cores // max(1, slots))


def limit_threads(threads: int) -> None:
    """Cap this process's thread pools at ``threads``: BLAS and OpenMP (numpy, SciPy, scikit-learn,
    through threadpoolctl), torch's, and those of any process it starts (environment)."""
    global _limit
    import numpy  # noqa: F401  (threadpoolctl limits only libraries already loaded)
    import scipy.linalg  # noqa: F401
    import sklearn.utils  # noqa: F401
    from threadpoolctl import threadpool_limits

    threadpool_limits(threads)
    for name in THREAD_VARIABLES:
        os.environ[name] = str(threads)
    _limit = threads
    if "torch" in sys.modules:
        apply_to_torch()


def current_limit() -> int:
    """The threads this process's pools may run: the limit :func:`limit_threads` set, else every core it may use."""
    return _limit if _limit is not None else available_cores()


def apply_to_torch() -> None:
    """Give torch the limit set by :func:`limit_threads`, if any (called when torch is loaded later)."""
    if _limit is None:
        return
    import torch

    if torch.get_num_threads() != _limit:
        torch.set_num_threads(_limit)
