"""How many threads a task may use, so that tasks sharing a machine do not oversubscribe it.

An executor runs several tasks at once (its *slots*); each task's BLAS, OpenMP and torch pools
default to every core, so on two cores four tasks ran sixteen threads. A task sizes its pools to
its share instead: the cores divided by the slots, at least one. ``FSDL_TASK_THREADS`` overrides it.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Final

log = logging.getLogger(__name__)

THREAD_VARIABLES: Final = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
_limit: int | None = None


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity, which containers and taskset narrow)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


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
