"""Bounded work in flight: a prediction is admitted only if it can be answered within the latency budget.

Without a bound, every request that arrives waits its turn for the model: under a crowd, each one
waits longer than its client's patience, and the cores still compute answers nobody reads. A worker
process therefore admits at most ``depth`` predictions at once, where ``depth`` is how many fit in the
latency budget one after another, at the measured time of one inference
(``WEBAPP_LATENCY_BUDGET_SECONDS`` over the service time, itself an average of the inferences this
process has made, starting from ``WEBAPP_SERVICE_SECONDS``). The rest are answered at once with 503
and a Retry-After of about the time the admitted ones need, and counted
(``fsdl_webapp_requests_shed_total``).

A refusal must cost next to nothing, or a crowd that does not wait as Retry-After asks starves the
model with refusals alone: :func:`init_app` therefore decides before anything else runs for the
request, before the per-client budgets are counted and before the upload is read.
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Callable, Iterator

from flask import Flask, g, request

_SMOOTHING = 0.2  # weight of the newest inference in the running service time


class OverloadedError(Exception):
    """This worker has as many predictions in flight as its latency budget allows."""

    def __init__(self, in_flight: int, retry_after: int) -> None:
        super().__init__(f"the server is at capacity ({in_flight} predictions in flight); retry in {retry_after} s")
        self.in_flight = in_flight
        self.retry_after = retry_after


class Admission:
    """Counts the predictions in flight in this process and refuses those past :attr:`depth`."""

    def __init__(self, budget_seconds: float, service_seconds: float, max_depth: int = 0) -> None:
        if budget_seconds <= 0 or service_seconds <= 0:
            raise ValueError("the latency budget and the service time must be positive")
        self.budget_seconds = budget_seconds
        self.service_seconds = service_seconds
        self.max_depth = max_depth
        self.in_flight = 0
        self._lock = threading.Lock()

    @property
    def depth(self) -> int:
        """Predictions this process may have in flight: as many as the budget holds, at least one."""
        depth = max(1, math.floor(self.budget_seconds / self.service_seconds))
        return min(depth, self.max_depth) if self.max_depth > 0 else depth

    def retry_after(self) -> int:
        """Seconds until the work now in flight is likely done: what a refused client should wait."""
        return max(1, math.ceil(self.in_flight * self.service_seconds))

    def acquire(self) -> None:
        """Take one place; raise :class:`OverloadedError` if there is none."""
        with self._lock:
            if self.in_flight >= self.depth:
                raise OverloadedError(self.in_flight, self.retry_after())
            self.in_flight += 1

    def release(self) -> None:
        with self._lock:
            self.in_flight -= 1

    @contextlib.contextmanager
    def admitted(self) -> Iterator[None]:
        """Hold one place while the block runs; raise :class:`OverloadedError` if there is none."""
        self.acquire()
        try:
            yield
        finally:
            self.release()

    def observe(self, seconds: float) -> None:
        """Fold one inference's measured time into the service time."""
        if seconds > 0:
            with self._lock:
                self.service_seconds += _SMOOTHING * (seconds - self.service_seconds)


def init_app(app: Flask, endpoints: set[str], admission: Callable[[], Admission]) -> None:
    """Admit requests to ``endpoints`` first thing, and give their place back when they end.

    Call it before the other extensions register their hooks: Flask runs before-request hooks in the
    order they were registered, so this one decides before the per-client budgets are counted.
    """

    @app.before_request
    def admit() -> None:
        if request.endpoint in endpoints:
            admission().acquire()  # OverloadedError: the error handlers answer 503
            g.admitted = True

    @app.teardown_request
    def give_back(_: BaseException | None) -> None:
        if g.pop("admitted", False):
            admission().release()
