"""The Intel scene workload: features, candidates, training runs, selection and registration.

One module per step: :mod:`.dataset` (the features of both splits and their version), :mod:`.plan`
(which candidates, from what), :mod:`.training` (one candidate, one MLflow run) and
:mod:`.registration` (the best one registered, the guarded promotion).

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

from fsdl_lib.scenes.dataset import SPLITS, SceneDataset, SplitSummary, combined_version, create_dataset, feature_cache
from fsdl_lib.scenes.plan import (
    TAG_TRAINING_PATH,
    TAG_TRAINING_REASON,
    TAG_WARM_START,
    TRAINING_FULL_GRID,
    TRAINING_REFIT,
    TrainingPlan,
    full_grid,
    plan_training,
)
from fsdl_lib.scenes.registration import Promotion, promote_if_better, register_best, select_best
from fsdl_lib.scenes.training import (
    SPLIT_SEED,
    VALIDATION_FRACTION,
    classification_metrics,
    confusion_figure,
    run_tags,
    train_candidate,
    validation_split,
)

__all__ = [
    "SPLITS",
    "SPLIT_SEED",
    "TAG_TRAINING_PATH",
    "TAG_TRAINING_REASON",
    "TAG_WARM_START",
    "TRAINING_FULL_GRID",
    "TRAINING_REFIT",
    "VALIDATION_FRACTION",
    "Promotion",
    "SceneDataset",
    "SplitSummary",
    "TrainingPlan",
    "classification_metrics",
    "combined_version",
    "confusion_figure",
    "create_dataset",
    "feature_cache",
    "full_grid",
    "plan_training",
    "promote_if_better",
    "register_best",
    "run_tags",
    "select_best",
    "train_candidate",
    "validation_split",
]
