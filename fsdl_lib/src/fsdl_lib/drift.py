"""Has what the served model sees drifted away from what it was trained on?

Three checks of one window of recent predictions against the served version's **reference**, a
sample drawn at training time (:class:`Reference`, logged with every candidate's run):

* **Features** (the ResNet50 embeddings): the unbiased squared maximum mean discrepancy (MMD²) with
  a Gaussian kernel whose bandwidth is the median pairwise distance, and a permutation p-value
  (Gretton et al., JMLR 2012). The kernel matrix of the pooled sample is computed once; each
  permutation is a relabelling of its rows, so all of them are one matrix product. Under no drift
  the p-value is uniform: flagging ``p < alpha`` raises a false alarm in a share ``alpha`` of the
  checks, whatever the features look like.
* **Predicted classes** against the training prior: Pearson's chi-square goodness of fit, with the
  total variation distance as the size of the shift.
* **Confidence** (the top probability) against the version's confidence on its held-out test
  split: the two-sample Kolmogorov-Smirnov test.

Only NumPy and SciPy: the drift libraries weighed (alibi-detect, frouros, evidently) add their own
import cost and pins for what is here a few lines of linear algebra (benchmarks/README.md, "Drift").
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
from scipy.stats import chisquare, ks_2samp

from fsdl_lib import storage
from fsdl_lib.classes import SCENE_CLASSES

REFERENCE_ARTIFACT: Final = "monitoring/reference.npz"
"""Where a training run keeps its reference sample, relative to the run's artifacts."""
REFERENCE_SIZE: Final = 500
"""Training images in a reference sample: enough power for a window of 100-200, seconds to test."""
PERMUTATIONS: Final = 500
CONFIDENCE_BINS: Final = 10


class DriftInputError(ValueError):
    """A window or a reference that cannot be tested (too small, wrong shape, not finite)."""


@dataclass(frozen=True)
class Reference:
    """What a version was trained on, as the drift checks need it.

    ``features``: a random sample of the training split's features (float16 keeps 500 × 2048 at
    2 MB); ``class_counts``: the training split's size per class, in :data:`SCENE_CLASSES` order;
    ``confidence``: the model's top probability on each image of its held-out test split.
    """

    features: np.ndarray
    class_counts: np.ndarray
    confidence: np.ndarray

    @classmethod
    def build(
        cls,
        train_features: np.ndarray,
        train_labels: Sequence[str],
        test_confidence: np.ndarray,
        *,
        size: int = REFERENCE_SIZE,
        seed: int = 0,
    ) -> Reference:
        rows = np.random.default_rng(seed).permutation(len(train_features))[:size]
        labels = np.asarray(train_labels, dtype=str)
        counts = np.array([(labels == c).sum() for c in SCENE_CLASSES], dtype=np.int64)
        return cls(
            np.asarray(train_features)[np.sort(rows)].astype(np.float16),
            counts,
            np.asarray(test_confidence, dtype=np.float32),
        )

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        np.savez_compressed(
            buffer,
            features=self.features,
            class_counts=self.class_counts,
            confidence=self.confidence,
            classes=np.array(SCENE_CLASSES, dtype=str),
        )
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> Reference:
        """Read a reference written by :meth:`to_bytes`: plain arrays only, never pickles."""
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as npz:
                arrays = {key: npz[key] for key in ("features", "class_counts", "confidence", "classes")}
        except (OSError, ValueError, KeyError) as exc:
            raise DriftInputError(f"not a drift reference ({exc})") from None
        if tuple(arrays["classes"].tolist()) != SCENE_CLASSES:
            raise DriftInputError(f"the reference's classes {arrays['classes'].tolist()} are not the scene classes")
        features = arrays["features"]
        if features.ndim != 2 or len(features) < 2 or not np.isfinite(features).all():
            raise DriftInputError(f"the reference's features are not a finite matrix (shape {features.shape})")
        return cls(features, arrays["class_counts"].astype(np.int64), arrays["confidence"].astype(np.float32))


@dataclass(frozen=True)
class MMDResult:
    statistic: float
    """Unbiased MMD² (can be slightly negative when the two samples agree)."""
    p_value: float
    bandwidth: float
    permutations: int


def _squared_distances(z: np.ndarray) -> np.ndarray:
    norms = np.einsum("ij,ij->i", z, z)
    d2 = norms[:, None] + norms[None, :] - 2.0 * (z @ z.T)
    np.maximum(d2, 0.0, out=d2)
    np.fill_diagonal(d2, 0.0)
    return d2


def mmd_test(
    reference: np.ndarray, window: np.ndarray, *, permutations: int = PERMUTATIONS, seed: int = 0
) -> MMDResult:
    """Two-sample MMD test of ``window`` against ``reference`` (rows are samples)."""
    x = np.asarray(reference, dtype=np.float64)
    y = np.asarray(window, dtype=np.float64)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise DriftInputError(f"reference {x.shape} and window {y.shape} must be matrices of the same width")
    if len(x) < 2 or len(y) < 2:
        raise DriftInputError("the reference and the window need at least two samples each")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise DriftInputError("the features hold NaN or infinite values")
    z = np.concatenate([x, y])
    d2 = _squared_distances(z)
    upper = d2[np.triu_indices(len(z), k=1)]
    median = float(np.median(upper))
    bandwidth2 = median if median > 0 else float(upper.mean()) or 1.0
    kernel = np.exp(-d2 / bandwidth2)
    np.fill_diagonal(kernel, 0.0)  # the unbiased estimate leaves out each sample's pairing with itself

    n, m = len(x), len(y)
    rng = np.random.default_rng(seed)
    # Column 0 is the observed split; the others are random relabellings of the pooled rows.
    membership = np.zeros((len(z), permutations + 1))
    membership[:n, 0] = 1.0
    for column in range(1, permutations + 1):
        membership[rng.permutation(len(z))[:n], column] = 1.0
    k_s = kernel @ membership
    total = kernel.sum()
    within_x = np.einsum("ij,ij->j", membership, k_s)
    row_sums = kernel.sum(axis=1)
    cross = membership.T @ row_sums - within_x
    within_y = total - within_x - 2.0 * cross
    stats = within_x / (n * (n - 1)) + within_y / (m * (m - 1)) - 2.0 * cross / (n * m)
    observed = stats[0]
    p_value = (1.0 + np.count_nonzero(stats[1:] >= observed)) / (permutations + 1.0)
    return MMDResult(float(observed), float(p_value), float(np.sqrt(bandwidth2)), permutations)


def class_shift(predicted: Sequence[str], class_counts: np.ndarray) -> dict[str, Any]:
    """Predicted-class counts of the window against the training prior (chi-square, and TVD)."""

    labels = list(predicted)
    observed = np.array([labels.count(c) for c in SCENE_CLASSES], dtype=float)
    prior = np.asarray(class_counts, dtype=float)
    prior = prior / prior.sum()
    expected = prior * observed.sum()
    keep = expected > 0  # a class absent from training: its predictions cannot be tested this way
    result = chisquare(observed[keep], expected[keep] * observed[keep].sum() / expected[keep].sum())
    return {
        "p_value": float(result.pvalue),
        "total_variation": float(0.5 * np.abs(observed / observed.sum() - prior).sum()),
        "counts": dict(zip(SCENE_CLASSES, observed.astype(int).tolist(), strict=True)),
        "prior": dict(zip(SCENE_CLASSES, prior.round(4).tolist(), strict=True)),
    }


def confidence_shift(confidence: np.ndarray, reference: np.ndarray) -> dict[str, Any]:
    """Top-probability distribution of the window against the test split's (KS), with histograms."""

    window, expected = np.asarray(confidence, dtype=float), np.asarray(reference, dtype=float)
    edges = np.linspace(0.0, 1.0, CONFIDENCE_BINS + 1)
    return {
        "p_value": float(ks_2samp(window, expected).pvalue) if len(expected) else None,
        "mean": float(window.mean()),
        "reference_mean": float(expected.mean()) if len(expected) else None,
        "histogram": np.histogram(window, edges)[0].tolist(),
        "reference_histogram": np.histogram(expected, edges)[0].tolist(),
    }


@dataclass(frozen=True)
class DriftReport:
    """One check of one window. ``drift`` is the feature test's verdict at ``alpha``."""

    n_window: int
    n_reference: int
    alpha: float
    mmd: float
    p_value: float
    bandwidth: float
    permutations: int
    drift: bool
    classes: dict[str, Any]
    confidence: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_window(
    reference: Reference,
    features: np.ndarray,
    predicted: Sequence[str],
    confidence: np.ndarray,
    *,
    alpha: float = 0.01,
    permutations: int = PERMUTATIONS,
    seed: int = 0,
) -> DriftReport:
    """All three checks of one window of predictions against ``reference``."""
    if not 0.0 < alpha < 1.0:
        raise DriftInputError(f"alpha must be between 0 and 1, not {alpha}")
    if not len(features) == len(predicted) == len(confidence):
        raise DriftInputError("the window's features, predictions and confidences must have one row per prediction")
    mmd = mmd_test(reference.features, features, permutations=permutations, seed=seed)
    return DriftReport(
        n_window=len(features),
        n_reference=len(reference.features),
        alpha=alpha,
        mmd=mmd.statistic,
        p_value=mmd.p_value,
        bandwidth=mmd.bandwidth,
        permutations=permutations,
        drift=mmd.p_value < alpha,
        classes=class_shift(predicted, reference.class_counts),
        confidence=confidence_shift(confidence, reference.confidence),
    )


@dataclass(frozen=True)
class RetrainDecision:
    retrain: bool
    reason: str
    model_version: str | None = None


@dataclass(frozen=True)
class DriftSettings:
    """How the web app checks drift (its WEBAPP_DRIFT_* settings)."""

    interval_seconds: float
    window: int
    min_window: int
    alpha: float
    persist_checks: int


@dataclass(frozen=True)
class DriftStatus:
    """What the web app knows of the served version's drift: how it checks, its recent checks (each
    a row of its drift log with the :class:`DriftReport` as a dict) and whether drift persists. The
    web app serves it (``/api/v1/drift``) and leaves it for the drift watch DAG (:func:`write_status`,
    :func:`read_status`), which decides on it (:func:`retrain_decision`)."""

    settings: DriftSettings
    status: str
    model_version: str | None
    persistent: bool
    checks: list[dict[str, Any]]
    written_at: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> DriftStatus:
        """Read a status written by :meth:`as_dict`; :class:`DriftInputError` naming what is wrong."""
        try:
            return cls(**{**data, "settings": DriftSettings(**data["settings"]), "checks": list(data["checks"])})
        except (KeyError, TypeError) as exc:
            raise DriftInputError(f"not a drift status the web app writes ({exc})") from None


def write_status(path: Path, status: DriftStatus) -> None:
    """Leave the web app's drift status at ``path``, stamped with the time, for the drift watch DAG
    (:func:`read_status`); readers see the old file or the new one whole."""

    stamped = {**status.as_dict(), "written_at": time.time()}
    storage.write_bytes(path, json.dumps(stamped).encode(), durable=False)


def read_status(path: Path) -> DriftStatus:
    """The drift status the web app left at ``path``; :class:`DriftInputError` saying why when there
    is none to read."""
    try:
        data = json.loads(storage.read_bytes(path))
    except FileNotFoundError:
        raise DriftInputError(
            f"no drift status at {storage.describe(path)}: the web app writes it there every "
            "WEBAPP_DRIFT_INTERVAL_SECONDS (0 turns the checks off). Is it running, with the same feedback "
            "place (FSDL_FEEDBACK_URL, or feedback/ of FSDL_DATA_DIR)?"
        ) from None
    except (OSError, ValueError) as exc:
        raise DriftInputError(f"the drift status at {storage.describe(path)} cannot be read ({exc})") from None
    try:
        return DriftStatus.from_dict(data)
    except DriftInputError as exc:
        raise DriftInputError(f"{path}: {exc}") from None


def retrain_decision(status: DriftStatus, *, enabled: bool) -> RetrainDecision:
    """Whether the web app's drift status calls for a full retraining.

    Only persistent drift does (the last ``persist_checks`` checks of the served version all flagged
    it: one check alone is a false alarm in a share ``alpha`` of windows), and only when enabled.
    """
    version = status.model_version
    mine = [c for c in status.checks if c.get("model_version") == version]
    if not status.persistent:
        if not mine:
            return RetrainDecision(False, f"no drift check of the served version yet ({status.status})", version)
        latest = mine[-1]
        return RetrainDecision(
            False,
            f"no persistent drift: the newest check of version {version} has p = {latest['p_value']:.4f} "
            f"(threshold {status.settings.alpha}), over {latest['n_window']} predictions",
            version,
        )
    flagged = mine[-status.settings.persist_checks :]
    values = ", ".join(f"{c['p_value']:.4f}" for c in flagged)
    if not enabled:
        return RetrainDecision(
            False, f"drift persists for version {version} (p = {values}), but FSDL_RETRAIN_ON_DRIFT is off", version
        )
    return RetrainDecision(True, f"drift persists for version {version} (p = {values}): retrain", version)
