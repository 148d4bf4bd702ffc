"""The classifiers tried on ResNet50 features. Light to import: DAG files read the names."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

SEED: Final = 42


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


def build_pipeline(candidate: Candidate) -> Pipeline:
    """The candidate's estimator behind a StandardScaler (ResNet features vary widely in scale)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    params = dict(candidate.params)
    if candidate.kind == "logistic_regression":
        estimator = LogisticRegression(max_iter=2000, random_state=SEED, **params)
    elif candidate.kind == "svm":
        estimator = SVC(probability=True, random_state=SEED, **params)
    elif candidate.kind == "knn":
        estimator = KNeighborsClassifier(**params)
    else:
        raise ValueError(f"unknown candidate kind {candidate.kind!r}")
    return Pipeline([("scale", StandardScaler()), ("classify", estimator)])
