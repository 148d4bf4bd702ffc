"""The drift watch DAG against a real web app: it reads the drift status the web app leaves beside the
feedback, and updates the drift asset only when drift persists and retraining on drift is on. The
decision, case by case: tests/lib/test_drift.py."""

from __future__ import annotations

import io
import json

import pytest
import requests

from fsdl_tools.clients import wait_until
from tests.dags.conftest import asset_events, load_dag
from tests.webapp.test_drift import dusk

pytestmark = pytest.mark.slow


ASSET = "intel_scenes_drift"


def states(run) -> dict[str, str]:
    return {ti.task_id: ti.state for ti in run.get_task_instances()}


def test_persistent_drift_updates_the_asset_only_when_enabled(
    airflow_db, tmp_path, monkeypatch, production_model, mlflow_server, registry
):
    from tests.conftest import WebappServer

    held_out = [p.read_bytes() for p in sorted((registry.root / "test").glob("*/*.jpg"))]
    window = str(len(held_out))
    server = WebappServer(tmp_path, production_model, WEBAPP_DRIFT_INTERVAL_SECONDS="1", WEBAPP_DRIFT_WINDOW=window,
                          WEBAPP_DRIFT_MIN_WINDOW=window, WEBAPP_DRIFT_PERSIST_CHECKS="1").start()  # fmt: skip
    # Airflow and the web app share the data folder, and nothing else: no network path between them.
    monkeypatch.setenv("FSDL_DATA_DIR", str(server.data_dir))
    monkeypatch.setenv("FSDL_SCENES_MODEL_NAME", production_model)
    monkeypatch.setenv("FSDL_RETRAIN_ON_DRIFT", "1")
    status = server.data_dir / "feedback" / "drift" / f"{production_model}.json"
    dag = load_dag("drift_watch")
    before = len(asset_events(ASSET))
    try:
        log = lambda: server.log.read_text()[-3000:]  # noqa: E731
        wait_until(status.exists, 30, "the drift status file written as the monitor starts", interval=0.2, describe=log)
        idle = dag.test()
        assert states(idle) == {"check_drift": "success", "publish": "skipped"}  # no check yet

        for photo in held_out:  # the same scenes in poor light
            image = {"image": io.BytesIO(dusk(photo))}
            assert requests.post(f"{server.url}/api/v1/predict", files=image, timeout=60).ok
        wait_until(
            lambda: requests.get(f"{server.url}/api/v1/drift", timeout=10).json()["persistent"],
            60, "persistent drift in the web app", describe=log,
        )  # fmt: skip
        # The file follows within an interval.
        wait_until(
            lambda: json.loads(status.read_text())["persistent"], 30, "persistent drift in the file", interval=0.2
        )

        run = dag.test()
        assert states(run) == {"check_drift": "success", "publish": "success"}
        events = asset_events(ASSET)
        assert len(events) == before + 1
        assert events[-1]["retrain"] is True
        assert events[-1]["model_version"] == "1"
        assert "drift persists for version 1" in events[-1]["reason"]

        monkeypatch.setenv("FSDL_RETRAIN_ON_DRIFT", "0")
        off = dag.test()
        assert states(off) == {"check_drift": "success", "publish": "skipped"}
        assert len(asset_events(ASSET)) == before + 1
    finally:
        server.stop()


def test_a_missing_drift_status_fails_the_task_saying_where(airflow_db, tmp_path, monkeypatch, capsys, caplog):
    monkeypatch.setenv("FSDL_DATA_DIR", str(tmp_path / "data"))
    dag = load_dag("drift_watch")
    for task in dag.tasks:
        task.retries = 0
    run = dag.test()
    assert states(run)["check_drift"] == "failed"
    assert run.state == "failed"
    said = capsys.readouterr().out + capsys.readouterr().err + caplog.text
    assert f"no drift status at {tmp_path / 'data' / 'feedback' / 'drift'}" in said
    assert "WEBAPP_DRIFT_INTERVAL_SECONDS" in said
