"""The feedback sync DAG: the merge as a task, and the asset updated only when it merged.
The merge itself, case by case: tests/lib/test_merge.py."""

import pytest

from tests.dags.conftest import asset_events, load_dag

ASSET = "intel_scenes_train"


@pytest.mark.slow
def test_dag_updates_the_asset_only_when_it_merged(airflow_db, platform_data, accepted_feedback):
    dag = load_dag("feedback_sync")
    events_before = asset_events(ASSET)
    accepted_feedback(platform_data, "forest", "forest", 2)
    run = dag.test()
    assert run.state == "success"
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert states == {"merge_feedback": "success", "publish": "success"}
    events = asset_events(ASSET)
    assert len(events) == len(events_before) + 1
    assert events[-1]["merged"] == 2
    assert events[-1]["manifest"].endswith(".csv")

    idle = dag.test()
    assert {ti.task_id: ti.state for ti in idle.get_task_instances()}["publish"] == "skipped"
    assert len(asset_events(ASSET)) == len(events_before) + 1
