"""Choosing the best scene candidate, registering it, and the guarded promotion."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from fsdl_lib import tracking
from fsdl_lib.candidates import CANDIDATES
from fsdl_lib.exceptions import NoUsableCandidateError, UnsafeModelError
from fsdl_lib.scenes.dataset import SceneDataset
from fsdl_lib.scenes.plan import TAG_TRAINING_PATH, TrainingPlan, full_grid
from fsdl_lib.scenes.training import classification_metrics, run_tags

if TYPE_CHECKING:
    from fsdl_lib.config import Settings

log = logging.getLogger(__name__)


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
