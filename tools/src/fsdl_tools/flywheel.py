"""One turn of the data flywheel against a running platform, step by step, with timings.

train → promote (what a person does in the MLflow UI) → serve → users give feedback, some of it
corrections → a reviewer accepts it (through the review API) → the sync DAG merges it → the asset
schedules training → a new challenger on a new dataset version → promote → served without a
restart. Used by `make demo`, the end-to-end tests and the turnaround benchmarks.
"""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image, ImageOps

from fsdl_lib import tracking
from fsdl_lib.dataset import parse_manifest
from fsdl_tools.clients import AirflowClient, WebappClient

log = logging.getLogger(__name__)

TRAINING_DAG = "intel_scenes_parallel"
SYNC_DAG = "feedback_sync"


@dataclass
class FlywheelReport:
    timings: dict[str, float] = field(default_factory=dict)
    first: dict[str, Any] = field(default_factory=dict)
    second: dict[str, Any] = field(default_factory=dict)
    feedback: list[dict[str, Any]] = field(default_factory=list)
    sync_run: dict[str, Any] = field(default_factory=dict)

    @property
    def corrections(self) -> int:
        return sum(1 for f in self.feedback if not f["correct"])


def fresh_photo(path: Path) -> bytes:
    """A new photo from a sample one (mirrored), so feedback never repeats a file of the splits."""
    buffer = io.BytesIO()
    ImageOps.mirror(Image.open(path).convert("RGB")).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


class Flywheel:
    def __init__(
        self,
        airflow: AirflowClient,
        webapp: WebappClient,
        model_name: str,
        *,
        say: Callable[[str], None] = print,
        timeout: float = 1200,
    ) -> None:
        self.airflow, self.webapp = airflow, webapp
        self.model_name = model_name
        self.client = tracking.client()  # a person's client: MLflow's own login variables
        self.say = say
        self.timeout = timeout
        self.report = FlywheelReport()
        self.on_step: Callable[[str], None] = lambda step: None
        """Called with each step's name as it starts (a benchmark's load sampler listens)."""

    def _timed(self, step: str, action: Callable[[], Any]) -> Any:
        self.on_step(step)
        start = time.monotonic()
        result = action()
        self.report.timings[step] = time.monotonic() - start
        self.say(f"{step}: {self.report.timings[step]:.1f} s")
        return result

    def train(self) -> dict[str, Any]:
        run_id = self.airflow.trigger(TRAINING_DAG)
        run = self.airflow.wait_for_run(TRAINING_DAG, run_id, self.timeout)
        if run["state"] != "success":
            raise RuntimeError(f"{TRAINING_DAG} run {run_id} failed; see its task logs in Airflow")
        return self._challenger(run_id)

    def _challenger(self, dag_run_id: str) -> dict[str, Any]:
        version = tracking.resolve_alias(self.model_name, tracking.ALIAS_CHALLENGER)
        if version.tags.get(tracking.TAG_DAG_RUN_ID) != dag_run_id:
            raise RuntimeError(f"the challenger (version {version.version}) does not come from run {dag_run_id}")
        return {
            "version": str(version.version),
            "dag_run_id": dag_run_id,
            "dataset_version": version.tags[tracking.TAG_DATASET_VERSION],
            "candidate": version.tags.get("candidate"),
            "training_path": version.tags.get("training_path"),
            "training_reason": version.tags.get("training_reason"),
            "warm_start_version": version.tags.get("warm_start_version"),
            "val_f1": float(version.tags.get("val_f1", "nan")),
            "test_f1": float(version.tags.get("test_f1", "nan")),
            "run_id": version.run_id,
        }

    def promote(self, version: str) -> float:
        """Give ``version`` the alias production; return how long until the web app served it."""
        self.client.set_registered_model_alias(self.model_name, tracking.ALIAS_PRODUCTION, version)
        return self.webapp.wait_for_version(version, timeout=120)

    def give_feedback(self, photos: Sequence[Path], want: int = 5, corrections: int = 2) -> None:
        """Upload new photos until ``want`` got feedback, ``corrections`` of them corrections."""
        confirmations = want - corrections
        for path in photos:
            truth = path.parent.name
            prediction = self.webapp.predict(fresh_photo(path), f"{path.stem}-mirrored.jpg")
            correct = prediction["label"] == truth
            done_right = sum(f["correct"] for f in self.report.feedback)
            done_wrong = len(self.report.feedback) - done_right
            if (correct and done_right >= confirmations) or (not correct and done_wrong >= corrections):
                continue
            answer = self.webapp.feedback(prediction["prediction_id"], correct, truth)
            self.report.feedback.append(
                {"photo": path.name, "prediction_id": prediction["prediction_id"], "predicted": prediction["label"],
                 "label": truth, "correct": correct, "review_state": answer["review_state"], "stored": answer["path"]}
            )  # fmt: skip
            if len(self.report.feedback) == want:
                return
        raise RuntimeError(f"could not collect {want} answers with {corrections} corrections from {len(photos)} photos")

    def review(self) -> None:
        """Accept the answers given (a reviewer's decision through the review API)."""
        waiting = [f for f in self.report.feedback if f["review_state"] == "pending"]
        if not waiting:
            return
        results = self.webapp.review([{"prediction_id": f["prediction_id"], "action": "accept"} for f in waiting])
        stored = {r["prediction_id"]: r["path"] for r in results}
        for item in waiting:
            item["review_state"] = "accepted"
            item["stored"] = stored[item["prediction_id"]]

    def sync_and_retrain(self) -> dict[str, Any]:
        known = {r["dag_run_id"] for r in self.airflow.runs(TRAINING_DAG)}
        sync_id = self.airflow.trigger(SYNC_DAG)
        sync = self.airflow.wait_for_run(SYNC_DAG, sync_id, 300)
        states = {t["task_id"]: t["state"] for t in self.airflow.task_instances(SYNC_DAG, sync_id)}
        self.report.sync_run = {"run_id": sync_id, "state": sync["state"], "tasks": states}
        if sync["state"] != "success" or states.get("publish") != "success":
            raise RuntimeError(f"the feedback sync did not publish new training data: {states}")
        run = self.airflow.wait_for_new_run(TRAINING_DAG, known, 120)
        finished = self.airflow.wait_for_run(TRAINING_DAG, run["dag_run_id"], self.timeout)
        if finished["state"] != "success":
            raise RuntimeError(f"the asset-triggered {TRAINING_DAG} run failed")
        second = self._challenger(run["dag_run_id"])
        second["run_type"] = finished.get("run_type")
        return second

    def manifest(self, run_id: str) -> list[str]:
        import mlflow

        text = mlflow.artifacts.load_text(f"runs:/{run_id}/datasets/train_manifest.csv")
        return [r.path for r in parse_manifest(text)]

    def turn(self, photos: Sequence[Path]) -> FlywheelReport:
        self.report.first = self._timed("train the first model", self.train)
        self.report.timings["first promotion served after"] = self.promote(self.report.first["version"])
        self._timed("five uploads with feedback", lambda: self.give_feedback(photos))
        self._timed("review: the answers accepted", self.review)
        self.report.second = self._timed("sync, then asset-triggered training", self.sync_and_retrain)
        self.report.timings["second promotion served after"] = self.promote(self.report.second["version"])
        self.report.timings["feedback to new version served"] = (
            self.report.timings["review: the answers accepted"]
            + self.report.timings["sync, then asset-triggered training"]
            + self.report.timings["second promotion served after"]
        )
        return self.report
