"""The Intel scene workload: features, candidates, training runs, selection and registration.

One module per step: :mod:`.dataset` (the features of both splits and their version), :mod:`.plan`
(which candidates, from what), :mod:`.training` (one candidate, one MLflow run) and
:mod:`.registration` (the best one registered, the guarded promotion).

The sequential and the parallel training DAGs are thin over this package, so both run one code path,
the steps it exports: :func:`plan_training` and :func:`create_dataset` → :func:`train_candidate` for
each planned candidate → :func:`register_best`. The rest is imported from its module.

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

from fsdl_lib.scenes.dataset import SceneDataset, create_dataset
from fsdl_lib.scenes.plan import TrainingPlan, plan_training
from fsdl_lib.scenes.registration import register_best
from fsdl_lib.scenes.training import train_candidate

__all__ = ["SceneDataset", "TrainingPlan", "create_dataset", "plan_training", "register_best", "train_candidate"]
