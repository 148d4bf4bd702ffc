"""Airflow glue shared by the DAG files: the scene tasks (so the sequential and parallel variants
run one code path), the training asset, and who is running (for MLflow tags).

A private module of the DAG folder (Airflow puts the folder on ``sys.path``; the leading underscore
keeps the integrity test from reading it as a DAG file). Imported by DAG files at parse time: only
``airflow.sdk`` and light modules of ``fsdl_lib`` here; every heavy import is inside a task. The work
itself is in ``fsdl_lib``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from airflow.sdk import Asset, Param, task

from fsdl_lib.candidates import TRAINING_CHOICES
from fsdl_lib.resources import COMPUTE_POOL

SCENES_TRAIN_ASSET = Asset("intel_scenes_train")
"""Updated by the feedback sync when it merged images; the parallel scene DAG runs on it."""
SCENES_DRIFT_ASSET = Asset("intel_scenes_drift")
"""Updated by the drift watch when drift persists (and FSDL_RETRAIN_ON_DRIFT is on); the parallel
scene DAG runs on it too, with the full grid."""


@dataclass(frozen=True)
class TaskIdentity:
    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    try_number: int

    @property
    def key(self) -> str:
        """Stable across retries of one task instance; distinct between instances."""
        suffix = f"[{self.map_index}]" if self.map_index >= 0 else ""
        return f"{self.dag_id}/{self.run_id}/{self.task_id}{suffix}"


def current_task() -> TaskIdentity:
    """The running task instance (call from inside a task)."""
    from airflow.sdk import get_current_context

    ti = get_current_context()["ti"]
    map_index = getattr(ti, "map_index", -1)
    return TaskIdentity(
        dag_id=ti.dag_id,
        run_id=ti.run_id,
        task_id=ti.task_id,
        map_index=-1 if map_index is None else int(map_index),
        try_number=int(getattr(ti, "try_number", 1) or 1),
    )


def lineage_tags(dataset_version: str) -> dict[str, str]:
    """Where a run or a version came from: its data, the code that ran, this DAG run."""
    from fsdl_lib.config import load_settings
    from fsdl_lib.tracking import lineage_tags as tags

    return tags(dataset_version, code=load_settings().code_version, dag_run_id=current_task().run_id)


def limit_threads() -> int:
    """Size this task's thread pools to what it was given: its slots in the compute pool (see
    :mod:`fsdl_lib.resources`); outside that pool, the cores divided by the executor's slots."""
    import logging

    from airflow.configuration import conf
    from airflow.sdk import get_current_context

    from fsdl_lib.config import load_settings
    from fsdl_lib.resources import COMPUTE_POOL, available_cores, threads_per_slot
    from fsdl_lib.resources import limit_threads as apply

    task = get_current_context()["task"]
    if task.pool == COMPUTE_POOL:
        threads, given = task.pool_slots, f"{task.pool_slots} of the {COMPUTE_POOL} pool's slots"
    else:
        celery = "CeleryExecutor" in conf.get("core", "executor")
        slots = conf.getint("celery", "worker_concurrency") if celery else conf.getint("core", "parallelism")
        threads, given = threads_per_slot(slots), f"{slots} executor slots"
    threads = load_settings().task_threads or threads
    apply(threads)
    logging.getLogger(__name__).info("%d threads for this task (%d cores, %s)", threads, available_cores(), given)
    return threads


def compute_queue() -> dict[str, str]:
    """``queue=`` of a compute task (read when a DAG file is parsed): FSDL_COMPUTE_QUEUE where set,
    else nothing, so the task goes to Airflow's default queue."""
    from fsdl_lib.config import load_settings

    queue = load_settings().compute_queue
    return {"queue": queue} if queue else {}


def compute_slots() -> int:
    """Slots of the compute pool (read when a DAG file is parsed)."""
    from fsdl_lib.config import load_settings

    return load_settings().compute_pool_slots


@task
def create_experiment() -> str:
    from fsdl_lib.config import load_settings
    from fsdl_lib.tracking import get_or_create_experiment

    return get_or_create_experiment(load_settings().scenes_experiment)


@task
def plan_extraction() -> list[dict[str, Any]]:
    """The new or changed images, in shards of FSDL_EXTRACT_SHARD_SIZE (one mapped task each)."""
    from fsdl_lib.config import load_settings
    from fsdl_lib.scenes.dataset import plan_extraction as plan

    return plan(load_settings())


@task(**compute_queue())  # exporting loads torch and the backbone: a compute host's work
def backbone_graph() -> dict[str, Any]:
    """The backbone's exported graph, which extraction and serving both run: the one stored in the data
    (exported now if this backbone has none yet, never overwritten), published to MLflow for serving."""
    from fsdl_lib.config import load_settings
    from fsdl_lib.graph_store import prepare_graph

    limit_threads()
    return prepare_graph(load_settings()).as_dict()


@task(
    execution_timeout=timedelta(hours=1),
    map_index_template="{{ shard_name }}",
    **compute_queue(),
    # Outside the compute pool, which counts every worker's cores as one: a shard takes its own
    # worker's share of that host's cores (its cores over its Celery slots), so shards spread over
    # the hosts and each runs as fast as its host allows.
)
def extract_features(shard: dict[str, Any], graph: dict[str, Any]) -> dict[str, Any]:
    """Extract one shard's features into the data's scratch space."""
    from airflow.sdk import get_current_context

    from fsdl_lib.config import load_settings
    from fsdl_lib.graph_store import GraphRef
    from fsdl_lib.scenes.dataset import extract_shard

    get_current_context()["shard_name"] = f"{shard['split']} ({len(shard['records'])} images)"
    limit_threads()
    return extract_shard(load_settings(), shard, GraphRef.from_dict(graph))


@task(
    execution_timeout=timedelta(hours=3),  # extracts what no shard covered (images added since the plan)
    pool=COMPUTE_POOL,
    pool_slots=compute_slots(),  # alone on every core: nothing else can use them meanwhile
    trigger_rule="none_failed",
    **compute_queue(),  # no shard at all (nothing new) skips extract_features, not this
)
def create_dataset(graph: dict[str, Any], shards: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Take the shards' features into the incremental caches of both splits; returns the dataset version."""
    from fsdl_lib.config import load_settings
    from fsdl_lib.graph_store import GraphRef
    from fsdl_lib.scenes import create_dataset as run

    limit_threads()
    return run(load_settings(), list(shards or []), GraphRef.from_dict(graph)).as_dict()


def scene_dataset() -> Any:
    """The dataset tasks: the backbone's graph, then plan the extraction, extract its shards with that
    graph (mapped: on as many workers as there are), take them in. Returns the dataset's description
    for the training tasks."""
    graph = backbone_graph()
    return create_dataset(graph, extract_features.partial(graph=graph).expand(shard=plan_extraction()))


TRAINING_PARAM = Param(
    "auto",
    enum=list(TRAINING_CHOICES),
    description=(
        "auto: after new feedback (the training asset), refit only the served version's candidate from its "
        "solution; otherwise every candidate. full: every candidate from scratch. refit: the served candidate only."
    ),
)


@task
def plan_training() -> list[dict[str, Any]]:
    """Choose the training path: the full grid, or a refit of the served candidate after new feedback.

    Returns one entry per candidate to train, ``{"candidate": name, "plan": the whole plan}``: the
    parallel DAG maps its training task over them (Airflow maps over a task's return value only),
    and every task downstream reads the plan from its input, not from a side channel."""
    import logging

    from airflow.sdk import get_current_context

    from fsdl_lib.config import load_settings
    from fsdl_lib.scenes import plan_training as plan

    context = get_current_context()
    run_type = context["dag_run"].run_type  # DagRunType, a str enum: compare its value
    triggered_by = {getattr(asset, "name", None) for asset in context.get("triggering_asset_events") or {}}
    chosen = plan(
        load_settings(),
        requested=context["params"].get("training", "auto"),
        new_feedback=getattr(run_type, "value", run_type) == "asset_triggered",
        drifted=SCENES_DRIFT_ASSET.name in triggered_by,
    )
    logging.getLogger(__name__).info("training path %s for %s: %s", chosen.path, chosen.candidates, chosen.reason)
    return [{"candidate": name, "plan": chosen.as_dict()} for name in chosen.candidates]


def plan_of(planned: list[dict[str, Any]]) -> dict[str, Any]:
    """The plan :func:`plan_training` returned (every entry carries the same one)."""
    return dict(planned[0]["plan"])


@task
def register_best(
    results: list[dict[str, Any]], dataset: dict[str, Any], planned: list[dict[str, Any]]
) -> dict[str, Any]:
    """Register the best candidate (validation F1) as a new `challenger` version."""
    from fsdl_lib.config import load_settings
    from fsdl_lib.scenes import SceneDataset, TrainingPlan
    from fsdl_lib.scenes import register_best as run

    return run(
        list(results),
        SceneDataset.from_dict(dataset),
        settings=load_settings(),
        dag_run_id=current_task().run_id,
        plan=TrainingPlan.from_dict(plan_of(planned)),
    )


def train(candidate: str, dataset: dict[str, Any], experiment_id: str, plan: dict[str, Any]) -> dict[str, Any]:
    """Train one candidate in the calling task (one MLflow run)."""
    from fsdl_lib.config import load_settings
    from fsdl_lib.scenes import SceneDataset, TrainingPlan, train_candidate

    limit_threads()
    me = current_task()
    key = me.key if me.map_index >= 0 else f"{me.key}/{candidate}"
    return train_candidate(
        candidate,
        SceneDataset.from_dict(dataset),
        experiment_id,
        settings=load_settings(),
        task_key=key,
        dag_run_id=me.run_id,
        plan=TrainingPlan.from_dict(plan),
    )
