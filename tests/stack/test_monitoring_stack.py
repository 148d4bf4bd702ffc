"""Prometheus scrapes the distributed mode: the web app, and Airflow through StatsD and the exporter."""

from __future__ import annotations

import time

import requests


def query(stack, promql: str) -> list[dict]:
    response = requests.get(
        f"{stack.prometheus}/api/v1/query", params={"query": promql}, auth=stack.prometheus_auth, timeout=10
    )
    body = response.json()
    assert body["status"] == "success", body
    return body["data"]["result"]


def wait_for(stack, promql: str, timeout: float = 90) -> list[dict]:
    deadline = time.monotonic() + timeout
    while not (result := query(stack, promql)):
        assert time.monotonic() < deadline, f"nothing for {promql}\n{stack.logs()}"
        time.sleep(2)
    return result


def test_prometheus_scrapes_the_web_app_and_the_celery_workers_task_metrics(stack):
    assert requests.get(f"{stack.prometheus}/api/v1/query", params={"query": "up"}, timeout=10).status_code == 401
    targets = wait_for(stack, "count(up == 1) == 2")  # the web app, and Airflow (the exporter)
    assert targets
    # A task run on the Celery worker reports its end through StatsD; Prometheus has it, with its ids.
    run_id = stack.client.trigger("feedback_sync")
    assert stack.wait_for_run("feedback_sync", run_id, 240)["state"] == "success"
    finished = wait_for(stack, 'airflow_ti_finish_total{dag_id="feedback_sync", task_id="merge_feedback"}')
    assert {series["metric"]["state"] for series in finished} == {"success"}
    assert float(wait_for(stack, "airflow_scheduler_heartbeat_total")[0]["value"][1]) > 0
    assert query(stack, "fsdl_model_served")[0]["value"][1] in ("0", "1")
    rules = requests.get(f"{stack.prometheus}/api/v1/rules", auth=stack.prometheus_auth, timeout=10).json()
    rules = rules["data"]["groups"]
    assert {rule["name"] for group in rules for rule in group["rules"]} >= {"ModelInputDrift", "DagRunFailed"}
