"""The served model: resolved from the registry alias, checked, swapped atomically on promotion.

One :class:`ModelService` per process holds the current classifier and the backbone graph its features
come from: the exported ResNet50 that training ran (:mod:`fsdl_lib.graph_store`), fetched from MLflow by
the sha256 the version records and run with ONNX Runtime, so serving never imports torch. A background
thread checks the alias every few seconds; a new version (with its graph, unless it shares the served
one) is loaded beside the old one and swapped in with one reference assignment, so requests never see
a half-loaded model. If the new version cannot be loaded, its graph is missing or not the one it
recorded, or it was trained on another backbone's features, the old one keeps serving and the reason
is reported by ``status()``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from fsdl_lib import tracking
from fsdl_lib.classes import SCENE_CLASSES
from fsdl_lib.exceptions import GraphUnavailableError, IncompatibleModelError, ModelNotFoundError, UnsafeModelError
from fsdl_lib.graph import GraphExtractor
from fsdl_lib.graph_store import fetch_graph, published_graph
from fsdl_lib.inference import class_probabilities
from fsdl_webapp.admission import Admission
from fsdl_webapp.offload import InferenceRunner

log = logging.getLogger(__name__)

GRAPH_RETRY_SECONDS = 30.0
"""How long a version whose backbone graph could not be had waits before it is tried again (a fetch
moves about 100 MB; the poll comes every few seconds)."""


@dataclass(frozen=True)
class ServedModel:
    model: Any
    name: str
    version: str
    alias: str
    backbone_id: str
    dataset_version: str | None
    run_id: str | None
    extractor: GraphExtractor
    """The backbone graph this version's features come from."""
    loaded_at: float = field(default_factory=time.time)

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "alias": self.alias,
            "backbone_id": self.backbone_id,
            "graph_sha256": self.extractor.sha256,
            "dataset_version": self.dataset_version,
            "run_id": self.run_id,
            "loaded_at": self.loaded_at,
        }


@dataclass(frozen=True)
class Prediction:
    label: str
    probabilities: dict[str, float]
    model: ServedModel
    features: np.ndarray
    """The image's backbone features, as the model saw them (kept for the drift checks)."""


class ModelService:
    """Serves ``models:/<name>@<alias>`` with features from the backbone graph the version records;
    graphs are kept in ``graph_cache``, a folder of files named by their sha256."""

    def __init__(
        self,
        graph_cache: Path,
        name: str,
        alias: str,
        poll_seconds: float,
        admission: Admission,
        on_change: Callable[[ServedModel], None] | None = None,
    ) -> None:
        self.graph_cache = graph_cache
        self.admission = admission
        self.on_change = on_change
        self.name = name
        self.alias = alias
        self.poll_seconds = poll_seconds
        self._current: ServedModel | None = None
        self._refresh_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_error: str | None = None
        self.last_check: float | None = None
        self._refused: str | None = None  # a version that can never be served: not tried again
        self._waiting: tuple[str, float] | None = None  # a version whose graph was missing, and until when it waits
        self._inference = InferenceRunner()

    @property
    def current(self) -> ServedModel | None:
        return self._current

    def refresh(self) -> bool:
        """Check the alias once; load and swap in a new version. True if the served model changed."""
        with self._refresh_lock:
            self.last_check = time.time()
            try:
                version = tracking.resolve_alias(self.name, self.alias)
            except ModelNotFoundError as exc:
                served = self._current
                self.last_error = f"{exc}; still serving version {served.version}" if served else str(exc)
                return False
            except Exception as exc:  # registry unreachable: keep serving what we have
                served = self._current
                self.last_error = "cannot reach the model registry" + (
                    f"; still serving version {served.version}" if served else ""
                )
                log.warning("%s: %s", self.last_error, exc)  # the details (URLs, errors) stay in the log
                return False
            current = self._current
            if current is not None and current.version == str(version.version):
                self.last_error = None
                return False
            if self._refused == str(version.version):
                return False  # last_error still says why
            if self._waiting and self._waiting[0] == str(version.version) and time.monotonic() < self._waiting[1]:
                return False  # its graph was missing a moment ago; last_error says why
            try:
                served = self._load(version)
            except Exception as exc:
                refused = isinstance(exc, UnsafeModelError | IncompatibleModelError)
                if refused:
                    self._refused = str(version.version)  # loading it again would fail the same way
                # Our own refusals say why (a missing graph may be published later: tried again at each
                # check); anything else (download errors naming internal URLs, say) stays in the log,
                # and clients read a generic reason.
                ours = refused or isinstance(exc, GraphUnavailableError)
                if isinstance(exc, GraphUnavailableError):
                    self._waiting = (str(version.version), time.monotonic() + GRAPH_RETRY_SECONDS)
                reason = str(exc) if ours else "it could not be loaded (the server log has the details)"
                self.last_error = f"version {version.version} of {self.name} was not loaded: {reason}"
                log.error(
                    "version %s of %s was not loaded: %s; %s",
                    version.version, self.name, exc, "still serving" if current else "nothing to serve",
                )  # fmt: skip
                return False
            self._current = served
            self.last_error = None
            if self.on_change is not None:
                try:
                    self.on_change(served)
                except Exception:  # a history entry lost is no reason to stop serving
                    log.exception("could not record that version %s is served", served.version)
            log.info(
                "now serving %s version %s (@%s, backbone %s)",
                self.name,
                served.version,
                self.alias,
                served.backbone_id,
            )
            return True

    def _load(self, version: Any) -> ServedModel:
        backbone = version.tags.get(tracking.TAG_BACKBONE_ID)
        if not backbone:
            raise IncompatibleModelError("it does not record the backbone its features came from")
        extractor = self._graph(version.tags, backbone)
        loaded = tracking.load_version(version)
        classes = [str(c) for c in getattr(loaded.model, "classes_", [])]
        if not classes or set(classes) - set(SCENE_CLASSES):
            raise IncompatibleModelError(f"its classes {classes} are not scene classes")
        return ServedModel(
            model=loaded.model,
            name=loaded.name,
            version=loaded.number,
            alias=self.alias,
            backbone_id=backbone,
            dataset_version=version.tags.get(tracking.TAG_DATASET_VERSION),
            run_id=version.run_id,
            extractor=extractor,
        )

    def _graph(self, tags: dict[str, str], backbone: str) -> GraphExtractor:
        """The graph a version's features come from: the served one when it is the same file, else
        fetched (once: kept in the cache by its sha256), checked and loaded."""
        run_id, sha256 = published_graph(tags)
        served = self._current
        if served is not None and served.extractor.sha256 == sha256 and served.extractor.id == backbone:
            return served.extractor
        path = fetch_graph(run_id, sha256, self.graph_cache)
        return GraphExtractor(path, expected_id=backbone, expected_sha256=sha256, batch_size=1)

    def predict(self, image: Image.Image) -> Prediction:
        served = self._current  # one read: the whole request uses the same version
        if served is None:
            raise LookupError("no model is being served")
        classes = [str(c) for c in served.model.classes_]
        scores, features = self._inference.run(self._scores, served, image)
        probabilities = {label: 0.0 for label in SCENE_CLASSES}
        probabilities.update({c: float(p) for c, p in zip(classes, scores, strict=True)})
        label = max(probabilities, key=lambda c: (probabilities[c], -SCENE_CLASSES.index(c)))
        return Prediction(label, probabilities, served, features[0])

    def _scores(self, served: ServedModel, image: Image.Image) -> tuple[np.ndarray, np.ndarray]:
        start = time.perf_counter()
        features = served.extractor.extract([image])
        scores = class_probabilities(served.model, features)[0]
        self.admission.observe(time.perf_counter() - start)  # the service time alone, not the wait for the thread
        return scores, features

    def status(self) -> dict[str, Any]:
        served = self._current
        return {
            "serving": served.describe() if served else None,
            "alias": self.alias,
            "model_name": self.name,
            "last_check": self.last_check,
            "last_error": self.last_error,
            "poll_seconds": self.poll_seconds,
            "admission": {
                "in_flight": self.admission.in_flight,
                "depth": self.admission.depth,
                "service_seconds": round(self.admission.service_seconds, 4),
                "latency_budget_seconds": self.admission.budget_seconds,
            },
        }

    def start(self, housekeeping: Callable[[], None] | None = None) -> None:
        """Check the alias at once, then every ``poll_seconds``, in a daemon thread.

        The first load happens in that thread too, so the process answers health checks even while
        the registry is down or slow; ``/readyz`` says when a model is served.
        """
        if self._thread is not None:
            return

        def loop() -> None:
            while True:
                try:
                    self.refresh()
                    if housekeeping is not None:
                        housekeeping()
                except Exception:
                    log.exception("model poll failed")
                if self._stop.wait(self.poll_seconds):
                    return

        self._thread = threading.Thread(target=loop, name="model-poll", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
