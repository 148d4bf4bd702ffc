"""Drift checks of the served version, in the background, never on a request.

Every ``WEBAPP_DRIFT_INTERVAL_SECONDS`` the monitor takes the newest ``WEBAPP_DRIFT_WINDOW``
predictions of the served version (their features are in the prediction log), tests them against
the reference sample logged with the version's training run (:mod:`fsdl_lib.drift`) and appends the
result to the log's ``drift_checks``; ``/monitoring``, ``/api/v1/drift`` and ``/metrics`` read it
from there. The status is also left as a file beside the feedback (``FSDL_DATA_DIR/feedback/drift``)
for the drift watch DAG, written at start and after every interval: Airflow reads it there and never
reaches the public web app over the network. A window is checked once: with no new prediction
since the last check nothing runs. Features older than the newest ten windows' worth are dropped
from the log after each check. The computation runs on an OS thread of its own, at the lowest
priority, with one BLAS thread, so a check (a twentieth of a second for 200 predictions) yields to
inference, and the gevent loop keeps serving.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from pathlib import Path
from typing import Any

from fsdl_lib import tracking
from fsdl_lib.drift import DriftInputError, DriftSettings, DriftStatus, Reference, check_window, write_status
from fsdl_lib.exceptions import StorageError
from fsdl_webapp.offload import InferenceRunner

log = logging.getLogger(__name__)

LOW_PRIORITY = 19
"""Niceness of the thread that computes the checks: the predictions' threads always go first."""
FEATURES_KEPT_PER_WINDOW = 10
"""The log keeps the features of the newest ten windows' worth of predictions (4 KB each), no more."""


class DriftMonitor:
    def __init__(self, service: Any, predictions: Any, checks: Any, web: Any, status_path: Path | None = None) -> None:
        self.service = service
        self.predictions = predictions  # the prediction log: the windows' features
        self.checks = checks  # the drift log
        self.status_path = status_path
        self.interval = web.drift_interval_seconds
        self.window = web.drift_window
        self.min_window = web.drift_min_window
        self.alpha = web.drift_alpha
        self.persist_checks = web.drift_persist_checks
        self._references: dict[tuple[str, str], Reference | str] = {}
        self._runner = InferenceRunner()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_status = "waiting for the first check"

    def reference(self, served: Any) -> Reference | str:
        """The served version's reference sample, or why there is none (looked up once per version)."""
        key = (served.name, served.version)
        if key not in self._references:
            if served.run_id is None:
                self._references[key] = f"version {served.version} has no training run to compare with"
            else:
                try:
                    self._references[key] = tracking.load_drift_reference(served.run_id)
                except DriftInputError as exc:
                    self._references[key] = str(exc)
                except Exception as exc:  # the registry is down: try again at the next check
                    log.warning("could not load the drift reference of version %s: %s", served.version, exc)
                    return "the drift reference could not be loaded (the server log has the details)"
        return self._references[key]

    def check(self) -> dict[str, Any] | None:
        """Check the newest window of the served version once; the report, or None (and why, in
        :attr:`last_status`) when there is nothing to check."""
        served = self.service.current
        if served is None:
            self.last_status = "no model is served"
            return None
        reference = self.reference(served)
        if isinstance(reference, str):
            self.last_status = reference
            return None
        window = self.predictions.features_window(served.name, served.version, self.window)
        count = len(window["labels"])
        if count < self.min_window:
            self.last_status = (
                f"{count} predictions of version {served.version} so far; the check needs {self.min_window}"
            )
            return None
        previous = self.checks.checks(limit=1)
        if previous and (previous[-1]["model_version"], previous[-1]["window_end"]) == (
            served.version,
            float(window["created_at"][-1]),
        ):
            self.last_status = "no new predictions since the last check"
            return None
        report = self._runner.run(self._compute, reference, window).as_dict()
        self.checks.record(served.name, served.version, window, report)
        self.last_status = f"checked {count} predictions of version {served.version}"
        log.log(
            logging.WARNING if report["drift"] else logging.INFO,
            "drift check of version %s over %d predictions: MMD² %.4g, p = %.4f%s",
            served.version, count, report["mmd"], report["p_value"], " (DRIFT)" if report["drift"] else "",
        )  # fmt: skip
        return report

    def _compute(self, reference: Reference, window: dict[str, Any]) -> Any:
        from threadpoolctl import threadpool_limits

        if threading.current_thread() is not threading.main_thread():
            # On Linux this lowers the priority of this thread only: inference comes first. Elsewhere,
            # or where it is not allowed, the check runs at normal priority.
            with contextlib.suppress(AttributeError, OSError):
                os.setpriority(os.PRIO_PROCESS, 0, LOW_PRIORITY)
        with threadpool_limits(1):
            return check_window(reference, window["features"], window["labels"], window["confidence"], alpha=self.alpha)

    def status(self, limit: int = 200) -> DriftStatus:
        """The recent checks, and whether drift persists (the last ``persist_checks`` all flagged)."""
        checks = self.checks.checks(limit=limit)
        served = self.service.current
        latest = [c for c in checks if served is not None and c["model_version"] == served.version]
        recent = latest[-self.persist_checks :]
        return DriftStatus(
            settings=DriftSettings(self.interval, self.window, self.min_window, self.alpha, self.persist_checks),
            status=self.last_status,
            model_version=served.version if served else None,
            persistent=len(recent) == self.persist_checks and all(c["drift"] for c in recent),
            checks=checks,
        )

    def publish(self) -> None:
        """Leave the status for the drift watch DAG (:attr:`status_path`); a failure is logged only."""
        if self.status_path is None:
            return
        try:
            write_status(self.status_path, self.status())
        except (OSError, StorageError) as exc:
            log.warning("the drift status could not be written to %s: %s", self.status_path, exc)

    def start(self) -> None:
        if self._thread is not None or self.interval <= 0:
            return

        def loop() -> None:
            self.publish()
            while not self._stop.wait(self.interval):
                try:
                    self.check()
                    self.predictions.prune_features(keep=FEATURES_KEPT_PER_WINDOW * self.window)
                except Exception:
                    log.exception("drift check failed")
                self.publish()

        self._thread = threading.Thread(target=loop, name="drift-monitor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
