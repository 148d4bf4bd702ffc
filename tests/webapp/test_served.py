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
