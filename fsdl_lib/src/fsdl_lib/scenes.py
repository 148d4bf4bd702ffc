"""The Intel scene workload: features, candidates, training runs, selection and registration.

The sequential and the parallel training DAGs are thin over this module, so both run one code path:
:func:`plan_training` and :func:`create_dataset` → :func:`train_candidate` for each planned
candidate → :func:`register_best`.

Two training paths (:class:`TrainingPlan`), recorded on every run and registered version as the tag
``training_path``:

* ``full_grid``: every candidate from scratch, the best on validation F1 wins. A run started by
  hand or on a schedule takes it.
* ``refit``: after new feedback, only the served version's candidate is trained again, on the whole
  grown training set, starting from the served model's coefficients where the estimator allows it
  (the logistic regressions; the solution of their convex problem does not depend on where the
  solver starts, only the time to reach it does). Its cost barely grows with the dataset, so the
  flywheel turns in minutes at any size; the full grid stays a deliberate, occasional run.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from fsdl_lib import tracking
from fsdl_lib._progress import Heartbeat
from fsdl_lib.candidates import CANDIDATES, TRAINING_CHOICES, Candidate, build_pipeline, fit, warm_start
from fsdl_lib.classes import SCENE_CLASSES
from fsdl_lib.dataset import FileRecord, dataset_version
from fsdl_lib.drift import Reference
from fsdl_lib.exceptions import FsdlError, NoUsableCandidateError
from fsdl_lib.features import BackboneId
from fsdl_lib.inference import top_probability

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

    from fsdl_lib.config import Settings
    from fsdl_lib.feature_store import FeatureSet

log = logging.getLogger(__name__)

TRAINING_FULL_GRID: Final = "full_grid"
TRAINING_REFIT: Final = "refit"
TAG_TRAINING_PATH: Final = "training_path"
TAG_TRAINING_REASON: Final = "training_reason"
TAG_WARM_START: Final = "warm_start_version"

VALIDATION_FRACTION: Final = 0.2
SPLIT_SEED: Final = 42
SPLITS: Final = ("train", "test")


def feature_cache(settings: Settings, split: str) -> Path:
    return settings.processed_dir / "intel_scenes" / f"features_{split}.npz"


# ---------------------------------------------------------------------------------------------
# create_dataset


@dataclass(frozen=True)
class SplitSummary:
    """One split's feature cache as :func:`create_dataset` left it."""

    cache: Path
    version: str
    images: int
    extracted: int
    skipped: tuple[str, ...] = ()


@dataclass(frozen=True)
class SceneDataset:
    """What :func:`create_dataset` hands the training tasks: which backbone's features of which
    images. Small, so it travels between tasks as its :meth:`as_dict` form."""

    backbone: BackboneId
    version: str
    """One version over both splits (:func:`combined_version`)."""
    splits: Mapping[str, SplitSummary]

    def as_dict(self) -> dict[str, Any]:
        return {
            "backbone_id": str(self.backbone),
            "dataset_version": self.version,
            "splits": {
                name: {**asdict(split), "cache": str(split.cache), "skipped": list(split.skipped)}
                for name, split in self.splits.items()
            },
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SceneDataset:
        splits = {
            name: SplitSummary(
                Path(split["cache"]),
                split["version"],
                int(split["images"]),
                int(split["extracted"]),
                tuple(split.get("skipped", ())),
            )
            for name, split in data["splits"].items()
        }
        return cls(BackboneId.parse(data["backbone_id"]), data["dataset_version"], splits)

    def load(self, split: str) -> FeatureSet:
        """The split's cached features, checked to be the ones this description was made from."""
        from fsdl_lib.feature_store import FeatureStore

        summary = self.splits[split]
        features = FeatureStore(summary.cache).load()
        if features.extractor_id != str(self.backbone) or features.version != summary.version:
            raise FsdlError(
                f"the {split} feature cache changed since create_dataset ran (another run updated it); "
                "clear the task to extract again"
            )
        return features


def create_dataset(settings: Settings) -> SceneDataset:
    """Update the feature caches of both splits and describe them for the training tasks."""
    from fsdl_lib.feature_store import FeatureStore
    from fsdl_lib.features import FeatureExtractor

    extractor = FeatureExtractor.from_settings(settings)
    splits: dict[str, SplitSummary] = {}
    records: dict[str, Sequence[FileRecord]] = {}
    for split in SPLITS:
        root = settings.scenes_raw_dir / split
        cache = feature_cache(settings, split)
        features, report = FeatureStore(cache).update(root, extractor, max_pixels=settings.max_image_pixels)
        if len(features) == 0:
            raise FsdlError(f"no usable images under {root}/<class>/; run `fsdl seed` or download the data")
        missing = sorted(set(SCENE_CLASSES) - set(features.labels))
        if split == "train" and missing:
            raise FsdlError(f"the training split has no images of {missing}; every class needs some")
        records[split] = features.records
        splits[split] = SplitSummary(
            cache, report.version, report.total, report.extracted, tuple(path for path, _ in report.skipped)
        )
    dataset = SceneDataset(extractor.backbone, combined_version(records), splits)
    log.info("dataset version %s (backbone %s)", dataset.version, dataset.backbone)
    return dataset


def combined_version(splits: Mapping[str, Sequence[FileRecord]]) -> str:
    """One version over several splits: each record's path is prefixed with its split."""
    return dataset_version(
        FileRecord(f"{split}/{r.path}", r.label, r.sha256) for split, records in splits.items() for r in records
    )


# ---------------------------------------------------------------------------------------------
# plan_training


@dataclass(frozen=True)
class TrainingPlan:
    """Which candidates a DAG run trains, and from what."""

    path: str
    """:data:`TRAINING_FULL_GRID` or :data:`TRAINING_REFIT`."""
    candidates: tuple[str, ...]
    reason: str
    warm_start: str | None = None
    """The registered version (number) whose model the refit starts from."""

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "candidates": list(self.candidates)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainingPlan:
        return cls(data["path"], tuple(data["candidates"]), data["reason"], data.get("warm_start"))

    @property
    def tags(self) -> dict[str, str]:
        tags = {TAG_TRAINING_PATH: self.path, TAG_TRAINING_REASON: self.reason}
        if self.warm_start is not None:
            tags[TAG_WARM_START] = self.warm_start
        return tags


def full_grid(reason: str) -> TrainingPlan:
    return TrainingPlan(TRAINING_FULL_GRID, tuple(CANDIDATES), reason)


def plan_training(
    settings: Settings, *, requested: str = "auto", new_feedback: bool = False, drifted: bool = False
) -> TrainingPlan:
    """The training path of one DAG run.

    ``requested`` is the run's ``training`` parameter (:data:`TRAINING_CHOICES`); ``new_feedback``
    says the run was started by the feedback sync (the training asset), ``drifted`` by the drift
    watch (the drift asset; it wins, with ``auto``: the full grid). A refit needs a production
    version on the current backbone whose candidate still exists; ``auto`` falls back to the full
    grid without one, an explicit ``refit`` fails and says why.
    """

    if requested not in TRAINING_CHOICES:
        raise FsdlError(f"training must be one of {', '.join(TRAINING_CHOICES)}, not {requested!r}")
    if requested == "full":
        return full_grid("the full grid was asked for")
    if requested == "auto" and drifted:
        # A refit keeps the served scaler and PCA, fitted to inputs that no longer look like today's.
        return full_grid("the served version's inputs drifted (the drift asset): every candidate on the newest data")
    if requested == "auto" and not new_feedback:
        return full_grid("not started by new feedback (started by hand or on a schedule)")
    name = settings.scenes_model_name
    current = tracking.alias_version(name, tracking.ALIAS_PRODUCTION)
    backbone = BackboneId.of(
        offline_weights=settings.offline_weights, seed=settings.weights_seed, image_size=settings.image_size
    )
    candidate = current.tags.get(tracking.TAG_CANDIDATE) if current is not None else None
    if current is None:
        problem = f"{name} has no production version to refit"
    elif candidate not in CANDIDATES:
        problem = f"production version {current.version} names no known candidate ({candidate!r})"
    elif current.tags.get(tracking.TAG_BACKBONE_ID) != str(backbone):
        problem = (
            f"production version {current.version} was trained on backbone "
            f"{current.tags.get(tracking.TAG_BACKBONE_ID)}, not the current {backbone}"
        )
    else:
        return TrainingPlan(
            TRAINING_REFIT,
            (candidate,),
            f"new feedback: refit {candidate}, the candidate of production version {current.version}",
            warm_start=str(current.version),
        )
    if requested == "refit":
        raise FsdlError(f"cannot refit: {problem}; run with training=full")
    return full_grid(f"new feedback, but {problem}: the full grid instead")


# ---------------------------------------------------------------------------------------------
# train_candidate


def validation_split(
    features: FeatureSet,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Stratified, seeded (fit, validation) split of the training features."""
    from sklearn.model_selection import train_test_split

    x, y = features.features, features.labels
    x_fit, x_val, y_fit, y_val = train_test_split(
        x, y, test_size=VALIDATION_FRACTION, random_state=SPLIT_SEED, stratify=y
    )
    return x_fit, x_val, y_fit, y_val


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """Accuracy and weighted F1, precision and recall."""
    from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score

    kwargs: dict[str, Any] = {"average": "weighted", "zero_division": 0}
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "f1": float(f1_score(y_true, y_pred, **kwargs)),
        "precision": float(precision_score(y_true, y_pred, **kwargs)),
        "recall": float(recall_score(y_true, y_pred, **kwargs)),
    }


def confusion_figure(y_true: np.ndarray, y_pred: np.ndarray, title: str) -> Any:
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
    import mlflow

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


# ---------------------------------------------------------------------------------------------
# register_best


def select_best(results: Sequence[Mapping[str, Any]]) -> Mapping[str, Any]:
    """The usable result with the highest validation F1; ties go to the earlier candidate.

    The test split plays no part: it only reports. Raises :class:`NoUsableCandidateError`.
    """
    order = {name: i for i, name in enumerate(CANDIDATES)}
    usable = [r for r in results if r.get("usable") and np.isfinite(r.get("val_f1", np.nan))]
    if not usable:
        reasons = "; ".join(f"{r.get('candidate')}: {r.get('error', 'no score')}" for r in results) or "none ran"
        raise NoUsableCandidateError(f"no candidate is usable ({reasons})")
    return min(usable, key=lambda r: (-round(float(r["val_f1"]), 12), order.get(r["candidate"], len(order))))


@dataclass(frozen=True)
class Promotion:
    promoted: bool
    reason: str
    challenger_f1: float
    production_f1: float | None = None
    production_version: str | None = None


def register_best(
    results: Sequence[Mapping[str, Any]],
    dataset: SceneDataset,
    *,
    settings: Settings,
    dag_run_id: str,
    plan: TrainingPlan | None = None,
) -> dict[str, Any]:
    """Register the winner as a new ``challenger`` version; optionally promote it (guarded)."""
    best = select_best(results)
    plan = plan or full_grid("no plan given")
    tags = {
        **run_tags(dataset, settings, dag_run_id),
        **plan.tags,
        tracking.TAG_CANDIDATE: best["candidate"],
        tracking.TAG_VAL_F1: f"{best['val_f1']:.4f}",
        tracking.TAG_TEST_F1: f"{best['test_f1']:.4f}",
    }
    version = tracking.register_version(
        f"runs:/{best['run_id']}/model",
        settings.scenes_model_name,
        aliases=[tracking.ALIAS_CHALLENGER],
        tags=tags,
        run_id=best["run_id"],
    )
    summary: dict[str, Any] = {
        "name": version.name,
        "version": str(version.version),
        "candidate": best["candidate"],
        "val_f1": best["val_f1"],
        "test_f1": best["test_f1"],
        "dataset_version": dataset.version,
        TAG_TRAINING_PATH: plan.path,
    }
    if settings.auto_promote:
        decision = promote_if_better(str(version.version), dataset, settings=settings)
        summary["promotion"] = asdict(decision)
    return summary


def promote_if_better(version: str, dataset: SceneDataset, *, settings: Settings) -> Promotion:
    """Move ``production`` to ``version`` only if it beats production on the same test split."""

    from fsdl_lib.exceptions import UnsafeModelError

    name = settings.scenes_model_name
    client = tracking.client()
    test = dataset.load("test")
    challenger = tracking.load_version(client.get_model_version(name, version)).model
    challenger_f1 = classification_metrics(test.labels, challenger.predict(test.features))["f1"]
    current = tracking.alias_version(name, tracking.ALIAS_PRODUCTION)
    if current is None:
        decision = Promotion(True, "no production version yet", challenger_f1)
    elif current.tags.get(tracking.TAG_BACKBONE_ID) != str(dataset.backbone):
        decision = Promotion(
            False,
            f"production version {current.version} uses backbone {current.tags.get(tracking.TAG_BACKBONE_ID)}; "
            "it cannot be scored on these features, so a person must decide",
            challenger_f1,
            production_version=str(current.version),
        )
    else:
        try:
            production = tracking.load_version(current).model
        except UnsafeModelError as exc:
            production = None
            decision = Promotion(
                False,
                f"production version {current.version} was refused ({exc}); a person must decide",
                challenger_f1,
                production_version=str(current.version),
            )
        if production is not None:
            production_f1 = classification_metrics(test.labels, production.predict(test.features))["f1"]
            better = challenger_f1 > production_f1
            decision = Promotion(
                better,
                "challenger beats production" if better else "challenger does not beat production",
                challenger_f1,
                production_f1,
                str(current.version),
            )
    if decision.promoted:
        client.set_registered_model_alias(name, tracking.ALIAS_PRODUCTION, version)
    client.set_model_version_tag(name, version, tracking.TAG_PROMOTION_DECISION, decision.reason)
    client.set_model_version_tag(name, version, "promotion_challenger_test_f1", f"{challenger_f1:.4f}")
    if decision.production_f1 is not None:
        client.set_model_version_tag(name, version, "promotion_production_test_f1", f"{decision.production_f1:.4f}")
    log.info(
        "promotion of %s v%s: %s (challenger F1 %.4f, production %s)",
        name, version, decision.reason, challenger_f1,
        "none" if decision.production_f1 is None else f"v{decision.production_version} F1 {decision.production_f1:.4f}",
    )  # fmt: skip
    return decision
