"""Poisoning the flywheel: 50 wrong corrections, from 50 addresses (one client may have only 25
waiting: tests/webapp/test_review_queue.py). Under the review policy none of them reaches the
training split until a reviewer accepts it, and once they are rejected the next dataset version is
the one before them."""

from __future__ import annotations

import io

from fsdl_lib.dataset import dataset_version, scan_split
from fsdl_lib.merge import merge_feedback
from fsdl_lib.seeding import seed_scenes
from tests.conftest import REVIEWER, SAMPLE_DIR
from tests.webapp.conftest import make_app


def train_version(settings) -> str:
    return dataset_version(scan_split(settings.scenes_raw_dir / "train"))


def test_fifty_wrong_corrections_never_reach_training_unless_accepted(tmp_path, extractor, production_model):
    app = make_app(tmp_path, extractor, production_model)
    settings = app.config["FSDL_SETTINGS"]
    seed_scenes(SAMPLE_DIR, settings.scenes_raw_dir, test_per_class=5)
    before = train_version(settings)
    photos = sorted(SAMPLE_DIR.glob("*/*.jpg"))[:50]
    ids = []
    for i, photo in enumerate(photos):
        client = app.test_client()
        client.environ_base["REMOTE_ADDR"] = f"203.0.113.{i + 1}"
        body = client.post("/api/v1/predict", data={"image": (io.BytesIO(photo.read_bytes()), "p.jpg")}).json
        # The attacker's claim: a class the photo does not show, and not the model's answer.
        wrong = next(c for c in ("street", "sea") if c not in (photo.parent.name, body["label"]))
        answer = {"prediction_id": body["prediction_id"], "correct": False, "label": wrong}
        assert client.post("/api/v1/feedback", json=answer).status_code == 200
        ids.append(body["prediction_id"])

    report = merge_feedback(settings, "poisoning-1")
    assert report.merged == 0
    assert train_version(settings) == before
    assert not list(settings.scenes_feedback_dir.rglob("*.jpg"))

    auth = {"Authorization": "Basic " + __import__("base64").b64encode(":".join(REVIEWER).encode()).decode()}
    queue = client.get("/api/v1/review/queue?limit=100", headers=auth).json
    assert queue["pending"] == 50
    rejected = client.post(
        "/api/v1/review/decisions",
        json={"decisions": [{"prediction_id": i, "action": "reject"} for i in ids]},
        headers=auth,
    )
    assert rejected.status_code == 200, rejected.json
    assert {r["review_state"] for r in rejected.json["results"]} == {"rejected"}

    report = merge_feedback(settings, "poisoning-2")
    assert report.merged == 0
    assert train_version(settings) == before
    assert client.get("/api/v1/review/queue", headers=auth).json["pending"] == 0
    assert len(client.get("/api/v1/review/decisions", headers=auth).json["decisions"]) == 50
