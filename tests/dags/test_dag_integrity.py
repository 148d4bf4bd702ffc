"""Every DAG file parses cleanly, fast, without heavy imports, and follows the house rules."""

import json
import subprocess
import sys
from datetime import timedelta

import pytest

from tests.conftest import ROOT
from tests.dags.conftest import dag_bag

DAG_FILES = sorted(p for p in (ROOT / "dags").glob("*.py") if not p.name.startswith("_"))
HEAVY = ("torch", "torchvision", "sklearn", "mlflow", "pandas", "matplotlib")

PARSE = """
import json, sys, time
from pathlib import Path
from airflow.dag_processing.dagbag import BundleDagBag
start = time.perf_counter()
bag = BundleDagBag(dag_folder=sys.argv[1], bundle_path=Path(sys.argv[1]))  # as the dag-processor parses
elapsed = time.perf_counter() - start
heavy = sorted(m for m in sys.modules if m.split(".")[0] in json.loads(sys.argv[2]))
print(json.dumps({"dags": sorted(bag.dag_ids), "errors": bag.import_errors, "heavy": heavy, "seconds": elapsed}))
"""


@pytest.fixture(scope="module")
def parsed(airflow_db):
    out = subprocess.run(
        [sys.executable, "-c", PARSE, str(ROOT / "dags"), json.dumps(HEAVY)], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def bag(airflow_db):
    return dag_bag(ROOT / "dags")


def test_no_import_errors_and_one_dag_per_file(parsed):
    assert parsed["errors"] == {}
    assert parsed["dags"] == sorted(p.stem for p in DAG_FILES)
    assert set(parsed["dags"]) == {
        "drift_watch", "feedback_sync", "intel_scenes_parallel", "intel_scenes_sequential", "wine_quality",
    }  # fmt: skip


def test_parsing_imports_nothing_heavy_and_is_quick(parsed):
    assert parsed["heavy"] == [], f"imported at parse time: {parsed['heavy']}"
    assert parsed["seconds"] < 10, f"parsing the DAG folder took {parsed['seconds']:.1f} s"


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.stem)
def test_dag_follows_house_rules(bag, path):
    dag = bag.get_dag(path.stem)
    assert dag is not None, f"{path.name} must define the DAG {path.stem!r}"
    assert dag.tags, "tags are set"
    assert dag.catchup is False
    assert dag.start_date.tzinfo is not None
    assert dag.dagrun_timeout is not None
    assert dag.doc_md, "the module docstring documents the DAG"
    for task in dag.tasks:
        assert task.retries >= 1, f"{task.task_id} has no retries"
        assert isinstance(task.execution_timeout, timedelta), f"{task.task_id} has no timeout"


def test_parallel_dag_maps_planned_candidates_and_runs_on_feedback_or_drift(bag):
    from airflow.sdk import Asset

    parallel = bag.get_dag("intel_scenes_parallel")
    mapped = parallel.get_task("train_candidate")
    assert mapped.map_index_template == "{{ candidate_name }}"
    planned = mapped.op_kwargs_expand_input.value  # expand_kwargs: one {"candidate", "plan"} per mapped task
    assert (planned.operator.task_id, planned.key) == ("plan_training", "return_value")
    for dag_id in ("intel_scenes_parallel", "intel_scenes_sequential"):
        assert bag.get_dag(dag_id).params["training"] == "auto"
    sync = bag.get_dag("feedback_sync")
    assert sync.get_task("publish").outlets == [Asset("intel_scenes_train")]
    watch = bag.get_dag("drift_watch")
    assert watch.get_task("publish").outlets == [Asset("intel_scenes_drift")]
    assets = list(parallel.timetable.asset_condition.objects)
    assert assets == [Asset("intel_scenes_train"), Asset("intel_scenes_drift")]


COMPUTE_TASKS = {
    ("intel_scenes_parallel", "create_dataset"): "all",
    ("intel_scenes_parallel", "train_candidate"): "share",
    ("intel_scenes_sequential", "create_dataset"): "all",
    ("intel_scenes_sequential", "train_candidates"): "all",
    ("wine_quality", "train_and_evaluate"): 1,
}


def test_compute_tasks_hold_a_slot_per_thread_of_the_compute_pool(bag):
    """Tasks that run BLAS or torch threads take one pool slot per thread, so the pool (one slot per
    core) never lets their threads outnumber the cores; extraction takes them all and runs alone."""
    from fsdl_lib.candidates import CANDIDATES
    from fsdl_lib.resources import COMPUTE_POOL, available_cores, share

    cores = available_cores()
    expected = {"all": cores, "share": share(cores, len(CANDIDATES))}
    for dag in bag.dags.values():
        for task in dag.tasks:
            want = COMPUTE_TASKS.get((dag.dag_id, task.task_id))
            if want is None:
                assert task.pool != COMPUTE_POOL, f"{dag.dag_id}.{task.task_id} computes nothing"
                continue
            assert task.pool == COMPUTE_POOL, f"{dag.dag_id}.{task.task_id}"
            assert task.pool_slots == expected.get(want, want), f"{dag.dag_id}.{task.task_id}"
            assert 1 <= task.pool_slots <= cores


def test_compute_tasks_go_to_the_compute_queue_when_one_is_set(airflow_db, monkeypatch):
    """FSDL_COMPUTE_QUEUE routes every compute task (the graph, extraction and training) to a Celery queue that
    only some workers take; the other tasks, and every task when it is unset, stay on Airflow's
    default queue."""
    from airflow.configuration import conf

    from fsdl_lib.resources import COMPUTE_POOL

    default = conf.get("operators", "default_queue")
    # Outside the pool: each extraction shard takes its own host's share; the graph is exported once.
    outside_pool = {
        (dag_id, task_id)
        for dag_id in ("intel_scenes_parallel", "intel_scenes_sequential")
        for task_id in ("extract_features", "backbone_graph")
    }
    compute = set(COMPUTE_TASKS) | outside_pool
    for queue in ("", "gpu"):
        monkeypatch.setenv("FSDL_COMPUTE_QUEUE", queue)
        monkeypatch.delitem(sys.modules, "_tasks", raising=False)  # its tasks too are made at parse time
        bag = dag_bag(ROOT / "dags")
        assert not bag.import_errors, bag.import_errors
        for dag in bag.dags.values():
            for task in dag.tasks:
                routed = (dag.dag_id, task.task_id) in compute
                assert task.queue == (queue if routed and queue else default), f"{dag.dag_id}.{task.task_id}"
                assert not routed or task.pool == COMPUTE_POOL or (dag.dag_id, task.task_id) in outside_pool
