"""Progress reporting that reads well both in a terminal and in a task log."""

from __future__ import annotations

import logging
import sys
import time
from types import TracebackType

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

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._bar is not None:
            self._bar.close()
