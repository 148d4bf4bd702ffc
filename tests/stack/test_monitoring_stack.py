"""Prometheus scrapes the distributed mode: the web app, and Airflow through StatsD and the exporter."""

from __future__ import annotations

import requests

from fsdl_tools.clients import wait_until


def query(stack, promql: str) -> list[dict]:
    response = requests.get(
        f"{stack.prometheus}/api/v1/query", params={"query": promql}, auth=stack.prometheus_auth, timeout=10
    )
    body = response.json()
    assert body["status"] == "success", body
    return body["data"]["result"]


def wait_for(stack, promql: str, timeout: float = 90) -> list[dict]:
    return wait_until(
        lambda: query(stack, promql), timeout, f"Prometheus answering {promql}", interval=2, describe=stack.logs
    )


def test_prometheus_scrapes_the_web_app_and_the_celery_workers_task_metrics(stack):
    assert requests.get(f"{stack.prometheus}/api/v1/query", params={"query": "up"}, timeout=10).status_code == 401
    wait_for(stack, "count(up == 1) == 2")
    assert {series["metric"]["job"] for series in query(stack, "up == 1")} == {"webapp", "airflow"}
    # A task run on the Celery worker reports its end through StatsD; Prometheus has it, with its ids.
    run_id = stack.client.trigger("feedback_sync")
    assert stack.wait_for_run("feedback_sync", run_id, 240)["state"] == "success"
    finished = wait_for(stack, 'airflow_ti_finish_total{dag_id="feedback_sync", task_id="merge_feedback"}')
    assert {series["metric"]["state"] for series in finished} == {"success"}
    assert float(wait_for(stack, "airflow_scheduler_heartbeat_total")[0]["value"][1]) > 0
    # The gauge says what the web app itself says: serving (ready) or not.
    serving = requests.get(f"{stack.webapp}/readyz", timeout=10).status_code == 200
    assert query(stack, "fsdl_model_served")[0]["value"][1] == ("1" if serving else "0")
    rules = requests.get(f"{stack.prometheus}/api/v1/rules", auth=stack.prometheus_auth, timeout=10).json()
    rules = rules["data"]["groups"]
    assert {rule["name"] for group in rules for rule in group["rules"]} >= {"ModelInputDrift", "DagRunFailed"}
