"""Heavy computation off gevent's event loop, on one real OS thread (inference, the drift checks)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def gevent_patched() -> bool:
    """Whether gevent has patched this process (the web app's gunicorn workers; not the tests)."""
    try:
        from gevent import monkey
    except ImportError:  # pragma: no cover - gevent is a dependency of the web app
        return False
    return bool(monkey.is_module_patched("threading"))


class InferenceRunner:
    """Runs inference on one real OS thread when the process serves with gevent.

    A gevent worker is one OS thread: a model running in a greenlet would stop the event loop for
    the whole inference, so reading the next uploads, decoding them and answering ``/healthz``
    would wait, and concurrent clients would see the sum of everything. On its own thread (torch
    and NumPy release the GIL) the model computes while the loop serves the rest; one thread keeps
    inferences one at a time, each with every core, never competing. Without gevent (tests, the
    development server) it calls the function directly.
    """

    def __init__(self) -> None:
        self._pool: Any = None
        if gevent_patched():
            from gevent.threadpool import ThreadPool

            self._pool = ThreadPool(1)

    @property
    def offloaded(self) -> bool:
        return self._pool is not None

    def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        return fn(*args) if self._pool is None else self._pool.apply(fn, args)
