"""Which candidates a scene training run trains: the full grid, or a refit of the served candidate."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Final

from fsdl_lib import tracking
from fsdl_lib.candidates import CANDIDATES, TRAINING_CHOICES
from fsdl_lib.exceptions import FsdlError
from fsdl_lib.features import BackboneId

if TYPE_CHECKING:
    from fsdl_lib.config import Settings

TRAINING_FULL_GRID: Final = "full_grid"
TRAINING_REFIT: Final = "refit"
TAG_TRAINING_PATH: Final = "training_path"
TAG_TRAINING_REASON: Final = "training_reason"
TAG_WARM_START: Final = "warm_start_version"


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
