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
import os
import sys
from typing import Final

log = logging.getLogger(__name__)

COMPUTE_POOL: Final = "fsdl_compute"
"""The Airflow pool of the tasks that run BLAS, OpenMP or torch threads: one slot per thread."""
COMPUTE_POOL_DESCRIPTION: Final = "Threads of the training tasks (feature extraction, candidates): one slot per core"

THREAD_VARIABLES: Final = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
_limit: int | None = None


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity, which containers and taskset narrow)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


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


def apply_to_torch() -> None:
    """Give torch the limit set by :func:`limit_threads`, if any (called when torch is loaded later)."""
    if _limit is None:
        return
    import torch

    if torch.get_num_threads() != _limit:
        torch.set_num_threads(_limit)
