"""Training one scene candidate as one MLflow run: validation, refit, test scores, model and drift reference."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Final

import mlflow
import numpy as np
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score
from sklearn.model_selection import train_test_split

from fsdl_lib import tracking
from fsdl_lib._progress import Heartbeat
from fsdl_lib.candidates import CANDIDATES, Candidate, build_pipeline, fit, warm_start
from fsdl_lib.classes import SCENE_CLASSES
from fsdl_lib.drift import Reference
from fsdl_lib.inference import top_probability
from fsdl_lib.scenes.dataset import SceneDataset
from fsdl_lib.scenes.plan import TrainingPlan, full_grid

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

    from fsdl_lib.config import Settings
    from fsdl_lib.feature_store import FeatureSet

log = logging.getLogger(__name__)

VALIDATION_FRACTION: Final = 0.2
SPLIT_SEED: Final = 42


def validation_split(
    features: FeatureSet,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Stratified, seeded (fit, validation) split of the training features."""
    x, y = features.features, features.labels
    x_fit, x_val, y_fit, y_val = train_test_split(
        x, y, test_size=VALIDATION_FRACTION, random_state=SPLIT_SEED, stratify=y
    )
    return x_fit, x_val, y_fit, y_val


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """Accuracy and weighted F1, precision and recall."""
    kwargs: dict[str, Any] = {"average": "weighted", "zero_division": 0}
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "f1": float(f1_score(y_true, y_pred, **kwargs)),
        "precision": float(precision_score(y_true, y_pred, **kwargs)),
        "recall": float(recall_score(y_true, y_pred, **kwargs)),
    }


def confusion_figure(y_true: np.ndarray, y_pred: np.ndarray, title: str) -> Any:
    # pyplot, on its file-only back-end, only where a figure is drawn: importing it picks a back-end.
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import ConfusionMatrixDisplay

    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    ConfusionMatrixDisplay.from_predictions(
        y_true, y_pred, labels=list(SCENE_CLASSES), ax=ax, colorbar=False, xticks_rotation=45
    )
    ax.set_title(title)
    fig.tight_layout()
    return fig


def run_tags(dataset: SceneDataset, settings: Settings, dag_run_id: str) -> dict[str, str]:
    """Tags every scene run and registered version carries."""
    return {
        **tracking.lineage_tags(dataset.version, code=settings.code_version, dag_run_id=dag_run_id),
        tracking.TAG_BACKBONE_ID: str(dataset.backbone),
        tracking.TAG_WEIGHTS_ID: dataset.backbone.weights,
        **(dataset.graph.tags if dataset.graph else {}),
    }


def train_candidate(
    name: str,
    dataset: SceneDataset,
    experiment_id: str,
    *,
    settings: Settings,
    task_key: str,
    dag_run_id: str,
    plan: TrainingPlan | None = None,
) -> dict[str, Any]:
    """Train one candidate as one MLflow run; return a small summary for :func:`select_best`.

    The candidate is scored on a validation split carved from train, then refit on all of train and
    scored on the test split. On the refit path (``plan``) both fits start from the served model's
    solution where the estimator allows it. A candidate whose estimator fails is reported as not
    usable (its run ends FAILED with the reason); failures of MLflow or the data raise, so Airflow
    retries.
    """
    plan = plan or full_grid("no plan given")
    candidate = CANDIDATES[name]
    train, test = dataset.load("train"), dataset.load("test")
    x_fit, x_val, y_fit, y_val = validation_split(train)
    previous = _warm_start_model(settings, plan)
    tags = {**run_tags(dataset, settings, dag_run_id), **plan.tags, "candidate": name}
    result: dict[str, Any] = {"candidate": name, "usable": False}
    with tracking.task_run(experiment_id, task_key=task_key, run_name=name, tags=tags) as run:
        result["run_id"] = run.info.run_id
        mlflow.log_params({"candidate": name, "estimator": candidate.kind, **candidate.params})
        mlflow.log_params({"validation_fraction": VALIDATION_FRACTION, "split_seed": SPLIT_SEED})
        tracking.log_dataset(train.records, context="train", name="intel-scenes-train")
        tracking.log_dataset(test.records, context="test", name="intel-scenes-test")
        try:
            validated, kept = _pipeline(candidate, previous, y_fit)
            with Heartbeat(f"{name}: fitting on {len(y_fit)} images (validation)", logger=log):
                first = fit(validated, x_fit, y_fit, classifier_only=kept)
            val_pred = validated.predict(x_val)
            model, kept = _pipeline(candidate, previous, train.labels)
            # The refit sees 1/(1 - validation share) as many images; most fits grow at least linearly.
            expected = first.seconds * len(train.labels) / max(1, len(y_fit))
            with Heartbeat(f"{name}: refitting on all {len(train.labels)} images", logger=log, expected=expected):
                final = fit(model, train.features, train.labels, classifier_only=kept)
        except (ValueError, ArithmeticError) as exc:
            # The estimator failed, not the task: this run ends FAILED, the others go on.
            mlflow.set_tag("failure", f"{type(exc).__name__}: {exc}")
            mlflow.end_run(status="FAILED")
            log.warning("candidate %s is not usable: %s", name, exc)
            result["error"] = str(exc)
            return result
        val = classification_metrics(y_val, val_pred)
        test_pred = model.predict(test.features)
        scores = classification_metrics(test.labels, test_pred)
        mlflow.log_metrics({f"val_{k}": v for k, v in val.items()})
        mlflow.log_metrics({f"test_{k}": v for k, v in scores.items()})
        mlflow.log_metrics({"fit_seconds": first.seconds, "refit_seconds": final.seconds})
        if final.iterations is not None:
            mlflow.log_metrics({"fit_iterations": first.iterations or 0, "refit_iterations": final.iterations})
        mlflow.set_tag("converged", str(first.converged and final.converged).lower())
        mlflow.log_figure(confusion_figure(test.labels, test_pred, f"{name} on test"), "confusion_matrix_test.png")
        tracking.log_sklearn_model(model, test.features[:2])
        confidence = top_probability(model, test.features)
        tracking.log_drift_reference(Reference.build(train.features, train.labels, confidence))
    result.update(usable=True, val_f1=val["f1"], test_f1=scores["f1"], test_accuracy=scores["accuracy"])
    log.info(
        "candidate %s: validation F1 %.3f, test F1 %.3f (fits %.1f s + %.1f s, %s)",
        name, val["f1"], scores["f1"], first.seconds, final.seconds,
        "converged" if first.converged and final.converged else "NOT converged",
    )  # fmt: skip
    return result


def _warm_start_model(settings: Settings, plan: TrainingPlan) -> Any:
    """The served model a refit starts from (loaded safely), or None."""

    if plan.warm_start is None:
        return None
    version = tracking.client().get_model_version(settings.scenes_model_name, plan.warm_start)
    return tracking.load_version(version).model


def _pipeline(candidate: Candidate, previous: Any, y: np.ndarray) -> tuple[Pipeline, bool]:
    """A fresh pipeline, or on the refit path one that starts from the served model; and whether
    only its classifier is to be fit (the served scaler and PCA are kept)."""
    if previous is None:
        return build_pipeline(candidate), False
    warm = warm_start(candidate, previous, y)
    if isinstance(warm, str):
        log.info("%s: fitting from scratch (%s)", candidate.name, warm)
        return build_pipeline(candidate), False
    log.info(
        "%s: warm start from the served model (its scaler and PCA kept, its coefficients to start)", candidate.name
    )
    return warm, True
