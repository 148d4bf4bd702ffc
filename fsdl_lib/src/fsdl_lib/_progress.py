"""Progress reporting that reads well both in a terminal and in a task log."""

from __future__ import annotations

import logging
import sys
import threading
import time

from tqdm import tqdm


class Progress:
    """A tqdm bar on a terminal; elsewhere (Airflow task logs) a log line every ``interval`` s."""

    def __init__(self, total: int, desc: str, *, logger: logging.Logger, interval: float = 15.0) -> None:
        self.total = total
        self.desc = desc
        self.done = 0
        self._log = logger
        self._interval = interval
        self._start = self._last = time.monotonic()
        self._bar = tqdm(total=total, desc=desc, unit="img") if sys.stderr.isatty() else None

    def update(self, n: int) -> None:
        self.done += n
        if self._bar is not None:
            self._bar.update(n)
            return
        now = time.monotonic()
        if now - self._last >= self._interval or self.done >= self.total:
            self._last = now
            self._log.info("%s: %s", self.desc, self.summary())

    def summary(self) -> str:
        elapsed = max(time.monotonic() - self._start, 1e-9)
        rate = self.done / elapsed
        left = (self.total - self.done) / rate if rate > 0 else float("inf")
        pct = 100.0 * self.done / self.total if self.total else 100.0
        return f"{self.done}/{self.total} ({pct:.0f}%), {rate:.1f} img/s, about {left:.0f} s left"

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._bar is not None:
            self._bar.close()


class Heartbeat:
    """Log lines while one long call runs that reports nothing itself (a scikit-learn fit): the
    time so far every ``interval`` s, with the time left when ``expected`` (seconds) is known."""

    def __init__(
        self, desc: str, *, logger: logging.Logger, interval: float = 30.0, expected: float | None = None
    ) -> None:
        self.desc = desc
        self.expected = expected
        self._log = logger
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="heartbeat", daemon=True)
        self._start = 0.0
        self.elapsed = 0.0

    def _beat(self) -> None:
        while not self._stop.wait(self._interval):
            elapsed = time.monotonic() - self._start
            if self.expected:
                left = self.expected - elapsed
                estimate = f"about {left:.0f} s left" if left > 0 else f"longer than the {self.expected:.0f} s expected"
                self._log.info("%s: %.0f s so far, %s", self.desc, elapsed, estimate)
            else:
                self._log.info("%s: %.0f s so far", self.desc, elapsed)

    def __enter__(self) -> Heartbeat:
        self._start = time.monotonic()
        estimate = f" (about {self.expected:.0f} s expected)" if self.expected and self.expected >= 1 else ""
        self._log.info("%s%s", self.desc, estimate)
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        self._stop.set()
        self._thread.join()
        self.elapsed = time.monotonic() - self._start
        self._log.info("%s: %s in %.1f s", self.desc, "failed" if exc_type else "done", self.elapsed)
