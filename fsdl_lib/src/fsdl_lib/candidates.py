"""The classifiers tried on ResNet50 features. Light to import: DAG files read the names."""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    import numpy as np
    from sklearn.pipeline import Pipeline

log = logging.getLogger(__name__)

SEED: Final = 42
TRAINING_CHOICES: Final = ("auto", "full", "refit")
"""What a scene DAG run may ask for (its ``training`` parameter): ``auto`` refits the served
candidate after new feedback and trains every candidate otherwise (fsdl_lib.scenes.plan_training)."""
MAX_ITER: Final = 3000
"""Iteration limit of the logistic regressions (lbfgs needs about 1,500 on 8,000 photos)."""


@dataclass(frozen=True)
class Candidate:
    """A classifier to try: ``kind`` names the estimator, ``params`` its hyperparameters."""

    name: str
    kind: str
    params: Mapping[str, Any] = field(default_factory=dict)


CANDIDATES: Final[dict[str, Candidate]] = {
    c.name: c
    for c in (
        Candidate("logreg_c1", "logistic_regression", {"C": 1.0}),
        Candidate("logreg_c2", "logistic_regression", {"C": 2.0}),
        Candidate("logreg_l1", "logistic_regression", {"C": 1.0, "l1_ratio": 1.0, "solver": "saga", "tol": 1e-3}),
        Candidate("svm_rbf", "svm", {"kernel": "rbf", "C": 1.0}),
        Candidate("knn_3", "knn", {"n_neighbors": 3}),
        Candidate("knn_7", "knn", {"n_neighbors": 7}),
    )
}
"""The candidates of the original project, in the order that breaks ties."""


REDUCED_DIM: Final = 256
"""Components kept by the PCA in front of every classifier (fewer when there are fewer images).

ResNet50's 2048 features are redundant; measured on 8,441 real photos (benchmarks/README.md),
256 components give every candidate the same or a better validation F1 and cut the training
time of the whole grid by more than ten: the RBF SVM's from minutes to seconds."""


def build_pipeline(candidate: Candidate) -> Pipeline:
    """The candidate's estimator behind a StandardScaler (ResNet features vary widely in scale) and
    a PCA to :data:`REDUCED_DIM` components. Fit it with :func:`fit`, which caps the components at
    what the data allows."""
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    params = dict(candidate.params)
    if candidate.kind == "logistic_regression":
        estimator = LogisticRegression(max_iter=MAX_ITER, random_state=SEED, **params)
    elif candidate.kind == "svm":
        estimator = SVC(probability=True, random_state=SEED, **params)
    elif candidate.kind == "knn":
        # By brute force, which on 256 components is what "auto" picks anyway: the model then holds
        # no KD-tree, a type the safe loader need not trust (fsdl_lib.tracking.TRUSTED_TYPES).
        estimator = KNeighborsClassifier(algorithm="brute", **params)
    else:
        raise ValueError(f"unknown candidate kind {candidate.kind!r}")
    reduce = PCA(REDUCED_DIM, random_state=SEED)
    return Pipeline([("scale", StandardScaler()), ("reduce", reduce), ("classify", estimator)])


@dataclass(frozen=True)
class FitReport:
    seconds: float
    iterations: int | None
    """Solver iterations, for estimators that report them (``n_iter_``)."""
    converged: bool
    """False when the solver stopped at its iteration limit (scikit-learn's ConvergenceWarning)."""


def fit(pipeline: Pipeline, x: np.ndarray, y: np.ndarray, *, classifier_only: bool = False) -> FitReport:
    """Fit ``pipeline`` in place; report its time and whether its solver converged.

    The PCA keeps at most as many components as there are images. With ``classifier_only`` the
    steps before the classifier are already fitted (:func:`warm_start`) and stay as they are.
    """
    from sklearn.exceptions import ConvergenceWarning

    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        if classifier_only:
            pipeline[-1].fit(pipeline[:-1].transform(x), y)
        else:
            if "reduce" in pipeline.named_steps:
                wanted = pipeline.named_steps["reduce"].n_components
                pipeline.set_params(reduce__n_components=min(wanted, *x.shape))
            pipeline.fit(x, y)
    seconds = time.perf_counter() - start
    converged = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
    n_iter = getattr(pipeline[-1], "n_iter_", None)
    iterations = None if n_iter is None else int(max(n_iter.ravel()) if hasattr(n_iter, "ravel") else n_iter)
    if not converged:
        log.warning(
            "%s stopped at its iteration limit (%s) before converging; its scores are still valid, "
            "but a higher max_iter or a looser tol would give the solution it was asked for",
            type(pipeline[-1]).__name__,
            iterations,
        )
    return FitReport(seconds, iterations, converged)


def warm_start(candidate: Candidate, previous: Any, y: np.ndarray) -> Pipeline | str:
    """A pipeline for a refit that starts where ``previous`` (the served model) ended, or why not.

    It keeps ``previous``'s fitted scaler and PCA (fit it with ``classifier_only=True``) and starts
    the classifier's solver from ``previous``'s coefficients: before it is fit, it decides exactly
    as ``previous``. Only the logistic regressions can start from a previous solution; their
    problem is convex, so where the solver starts changes its path, not the model it reaches.
    """
    import copy

    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    pipeline = build_pipeline(candidate)
    classify = pipeline[-1]
    if not isinstance(classify, LogisticRegression):
        return f"{type(classify).__name__} cannot start from a previous solution"
    if not (
        isinstance(previous, Pipeline)
        and [name for name, _ in previous.steps] == [name for name, _ in pipeline.steps]
        and all(type(a) is type(b) for (_, a), (_, b) in zip(previous.steps, pipeline.steps, strict=True))
        and hasattr(previous[-1], "coef_")
    ):
        return "the previous model is not a fitted pipeline of the same steps"
    if not np.array_equal(np.unique(y), previous[-1].classes_):
        return "the previous model was trained on other classes"
    steps = [(name, copy.deepcopy(step)) for name, step in previous.steps[:-1]]
    classify.set_params(warm_start=True)
    classify.coef_ = previous[-1].coef_.copy()
    classify.intercept_ = previous[-1].intercept_.copy()
    return Pipeline([*steps, ("classify", classify)])
