"""The web app as a real gunicorn process: concurrent feedback, and hot reload on promotion."""

from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.conftest import SAMPLE_DIR

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
    feedback = webapp_server.data_dir / "feedback" / "intel_scenes"
    assert not list(feedback.rglob("*.jpg")), "answers reached training before review"

    accepted = webapp_server.decide([{"prediction_id": p["prediction_id"], "action": "accept"} for p in predictions])
    assert accepted.status_code == 200, accepted.text
    stored = sorted(feedback.rglob("*.jpg"))
    assert len(stored) == 100
    import sqlite3

    with sqlite3.connect(webapp_server.state_dir / "feedback.db") as db:
        rows = db.execute("SELECT count(*) FROM predictions WHERE feedback_label IS NOT NULL").fetchone()[0]
    assert rows == 100
    assert not list((webapp_server.state_dir / "uploads").iterdir())


def test_gunicorn_serves_the_page_and_refuses_bad_uploads(webapp_server):
    page = requests.get(webapp_server.url, timeout=10)
    assert page.status_code == 200
    assert "Classify" in page.text
    bad = requests.post(f"{webapp_server.url}/api/v1/predict", files={"image": ("x.jpg", b"nope")}, timeout=10)
    assert bad.status_code == 400
    assert bad.json()["error"].startswith("not a usable image")
