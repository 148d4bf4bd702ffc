"""The web app as a real gunicorn process: concurrent feedback, and hot reload on promotion."""

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from mlflow import MlflowClient

from tests.conftest import SAMPLE_DIR
from tests.webapp.conftest import make_app

pytestmark = pytest.mark.slow


def test_hundred_concurrent_feedback_posts_lose_nothing(webapp_server):
    photos = sorted(SAMPLE_DIR.glob("*/*.jpg"))[:100]
    session = requests.Session()

    def classify(path):
        with path.open("rb") as handle:
            response = session.post(f"{webapp_server.url}/api/v1/predict", files={"image": handle}, timeout=60)
        assert response.status_code == 200, response.text
        return response.json()

    with ThreadPoolExecutor(4) as pool:
        predictions = list(pool.map(classify, photos))

    def answer(pred):
        body = {"prediction_id": pred["prediction_id"], "correct": True, "label": pred["label"]}
        return requests.post(f"{webapp_server.url}/api/v1/feedback", json=body, timeout=60)

    with ThreadPoolExecutor(50) as pool:
        responses = list(pool.map(answer, predictions))
    assert [r.status_code for r in responses] == [200] * 100

    stored = sorted(p for p in (webapp_server.data_dir / "feedback" / "intel_scenes").rglob("*.jpg"))
    assert len(stored) == 100
    import sqlite3

    with sqlite3.connect(webapp_server.state_dir / "feedback.db") as db:
        rows = db.execute("SELECT count(*) FROM predictions WHERE feedback_label IS NOT NULL").fetchone()[0]
    assert rows == 100
    assert not list((webapp_server.state_dir / "uploads").iterdir())


def test_promotion_is_served_within_the_poll_interval_without_restart(tmp_path, extractor, registry):
    import uuid

    name = f"hot-reload-{uuid.uuid4().hex[:6]}"
    registry.register(name)
    app = make_app(tmp_path, extractor, name, start_polling=True, poll_seconds=1)
    client = app.test_client()
    try:
        started = time.monotonic()
        while client.get("/api/v1/model").status_code != 200:  # the first load runs in the background
            assert time.monotonic() - started < 30, client.get("/readyz").json
            time.sleep(0.1)
        assert client.get("/api/v1/model").json["version"] == "1"
        registry.register(name, "knn_7", aliases=())
        MlflowClient().set_registered_model_alias(name, "production", "2")
        promoted = time.monotonic()
        while client.get("/api/v1/model").json["version"] != "2":
            assert time.monotonic() - promoted < 1 + 5, "the new version was not served in time"
            time.sleep(0.1)
        photo = (SAMPLE_DIR / "sea" / sorted(p.name for p in (SAMPLE_DIR / "sea").iterdir())[0]).read_bytes()
        import io

        body = client.post("/api/v1/predict", data={"image": (io.BytesIO(photo), "sea.jpg")}).json
        assert body["model"]["version"] == "2"
    finally:
        app.extensions["fsdl_model"].stop()


def test_gunicorn_serves_the_page_and_refuses_bad_uploads(webapp_server):
    page = requests.get(webapp_server.url, timeout=10)
    assert page.status_code == 200
    assert "Classify" in page.text
    bad = requests.post(f"{webapp_server.url}/api/v1/predict", files={"image": ("x.jpg", b"nope")}, timeout=10)
    assert bad.status_code == 400
    assert bad.json()["error"].startswith("not a usable image")


def test_starts_and_answers_health_checks_while_mlflow_is_down_then_serves_when_it_returns(
    tmp_path, production_model, mlflow_server
):
    """The registry is unreachable at start: /healthz answers at once, /readyz says why it is not
    ready, and the model is served once an MLflow server (on the same store) comes up."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from tests.conftest import WebappServer, free_port, stop_process_group, wait_for_http

    port = free_port()
    server = WebappServer(tmp_path, production_model, MLFLOW_TRACKING_URI=f"http://127.0.0.1:{port}")
    gunicorn = str(Path(sys.executable).with_name("gunicorn"))
    with server.log.open("ab") as log:
        server.proc = subprocess.Popen(
            [gunicorn, "-c", "python:fsdl_webapp.gunicorn_conf", "fsdl_webapp:create_app()"],
            env=server.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    mlflow = None
    try:
        started = time.monotonic()
        wait_for_http(f"{server.url}/healthz", 120, server.proc)
        print(f"healthz answered {time.monotonic() - started:.1f} s after start with MLflow down")
        ready = requests.get(f"{server.url}/readyz", timeout=10)
        assert ready.status_code == 503
        assert ready.json()["status"] == "not ready"
        assert "127.0.0.1" not in ready.text  # no internal address for anonymous clients
        assert requests.get(f"{server.url}/api/v1/model", timeout=10).status_code == 503

        store = Path(os.environ["FSDL_TEST_MLFLOW_HOME"])
        mlflow = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("mlflow")), "server", "--host", "127.0.0.1", "--port", str(port),
                "--workers", "1", "--backend-store-uri", f"sqlite:///{store}/mlflow.db",
                "--artifacts-destination", str(store / "artifacts"),
            ],
            env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        wait_for_http(f"{server.url}/readyz", 180, server.proc)
        assert requests.get(f"{server.url}/api/v1/model", timeout=10).json()["version"] == "1"
    finally:
        server.stop()
        if mlflow is not None:
            stop_process_group(mlflow)
