"""The web app layer: a real MLflow registry holding a real small scene classifier.

The tests mirror the modules of ``fsdl_webapp``: ``test_<module>.py`` for each. What several need
is here: an app on a temporary folder, clients at chosen addresses, and the requests a user and a
reviewer send.
"""

from __future__ import annotations

import base64
import dataclasses
import io
import uuid
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fsdl_deploy.objectstore import BUCKETS
from fsdl_lib.config import Settings
from fsdl_webapp import create_app
from fsdl_webapp.config import WebSettings
from fsdl_webapp.services import Records, open_records
from fsdl_webapp.throttle import BUDGETS
from tests.conftest import GRAPH_CACHE, IMAGE_SIZE, REVIEWER, SAMPLE_DIR

UNLIMITED = dict.fromkeys(BUDGETS, "100000/minute")
"""Budgets no test of something else reaches (those tests send bursts from one client); the tests of
the budgets themselves use the defaults."""
DEFAULT_BUDGETS = {name: getattr(WebSettings(), name) for name in BUDGETS}
"""The budgets every deployment gets unless it sets others."""
PHOTO = (SAMPLE_DIR / "forest" / "10078.jpg").read_bytes()
PROBABILITIES = {"forest": 0.7, "mountain": 0.3}


def make_app(tmp_path: Path, model_name: str, *, start_polling: bool = False, settings: Settings | None = None, **web):
    settings = dataclasses.replace(
        settings or Settings.from_env(),
        data_dir=tmp_path / "data",
        scenes_model_name=model_name,
        offline_weights=True,
        image_size=IMAGE_SIZE,
    )
    web = {
        "reviewer_password": REVIEWER[1], "review_sample_rate": 0.0, "graph_dir": str(GRAPH_CACHE.get("dir", "")),
        **UNLIMITED, **web,
    }  # fmt: skip
    web_settings = dataclasses.replace(WebSettings(), state_dir=str(tmp_path / "webapp"), **web)
    return create_app(
        {
            "TESTING": True,
            "FSDL_SETTINGS": settings,
            "WEB_SETTINGS": web_settings,
            "START_POLLING": start_polling,
        }
    )


@pytest.fixture
def app(tmp_path, production_model):
    return make_app(tmp_path, production_model)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def public_app(tmp_path, production_model):
    """The web app with the budgets it ships with."""
    return make_app(tmp_path, production_model, **DEFAULT_BUDGETS)


@pytest.fixture
def photo() -> bytes:
    return PHOTO


def basic(user: str, password: str) -> dict[str, str]:
    """The headers of an HTTP basic login."""
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


AS_REVIEWER = basic(*REVIEWER)


def client_at(app, address: str):
    """A test client whose requests come from ``address``."""
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def predict(client, data: bytes = PHOTO, name: str = "photo.jpg") -> dict:
    response = client.post("/api/v1/predict", data={"image": (io.BytesIO(data), name)})
    assert response.status_code == 200, response.json
    return response.json


def answer(client, prediction: dict, label: str):
    body = {"prediction_id": prediction["prediction_id"], "correct": label == prediction["label"], "label": label}
    return client.post("/api/v1/feedback", json=body)


def wrong_label(prediction: dict) -> str:
    """The class the model finds least likely: the most surprising claim."""
    return min(prediction["probabilities"], key=prediction["probabilities"].get)


def review(client, decisions: list[dict], auth: tuple[str, str] = REVIEWER):
    """Decide as the reviewer, after looking at what is to be accepted (the review page shows each image)."""
    for decision in decisions:
        if decision["action"] != "reject":
            client.get(f"/review/image/{decision['prediction_id']}", headers=basic(*auth))
    return client.post("/api/v1/review/decisions", json={"decisions": decisions}, headers=basic(*auth))


def noise_png(megabytes: float) -> bytes:
    """An uncompressed PNG of random pixels, about ``megabytes`` MiB."""
    side = int((megabytes * 1024 * 1024 / 3) ** 0.5)
    pixels = np.random.default_rng(0).integers(0, 256, (side, side, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", compress_level=0)
    return buffer.getvalue()


def open_records_for_test(tmp_path: Path, **web) -> Records:
    """The records as the web app opens them, with a minute to answer and no queue limit in the way."""
    settings = Settings.from_env({"FSDL_DATA_DIR": str(tmp_path / "data")})
    return open_records(
        tmp_path / "state", settings, dataclasses.replace(WebSettings(), prediction_ttl_seconds=60, **web)
    )


@pytest.fixture
def records(tmp_path) -> Records:
    return open_records_for_test(tmp_path)


def store_settings(tmp_path: Path, endpoint: str, key: str, secret: str, prefix: str) -> tuple[Settings, dict]:
    """The web app's settings and web settings with its uploads and feedback under ``prefix`` of the
    uploads bucket of the store at ``endpoint``, as compose and ``make up-distributed`` place them."""
    settings = Settings.from_env(
        {
            "FSDL_DATA_DIR": str(tmp_path / "data"),
            "FSDL_FEEDBACK_URL": f"s3://{BUCKETS['uploads']}/{prefix}/feedback",
            "FSDL_S3_ENDPOINT_URL": endpoint,
            "FSDL_S3_ACCESS_KEY_ID": key,
            "FSDL_S3_SECRET_ACCESS_KEY": secret,
        }
    )
    return settings, {"uploads_url": f"s3://{BUCKETS['uploads']}/{prefix}/pending"}


@pytest.fixture(params=["folder", "bucket"])
def kept_records(request, tmp_path) -> Records:
    """The records with the uploads and the feedback on a folder, or on a real SeaweedFS as the web
    app's identity (for what both back-ends must do alike)."""
    if request.param == "folder":
        return open_records_for_test(tmp_path)
    server = request.getfixturevalue("object_store")
    settings, web = store_settings(tmp_path, server.endpoint, *server.credentials["webapp"], uuid.uuid4().hex)
    return open_records(
        tmp_path / "state", settings, dataclasses.replace(WebSettings(), prediction_ttl_seconds=60, **web)
    )


def predicted(records: Records, prediction_id: str = "a" * 32, label: str = "forest", **kwargs) -> str:
    """A prediction in the log, as the API records one."""
    records.predictions.record(
        prediction_id, PHOTO, "jpg", model_name="m", model_version="3", label=label,
        probabilities=PROBABILITIES, latency_ms=12.0, **kwargs,
    )  # fmt: skip
    return prediction_id


def written_files(root: Path) -> list[Path]:
    """Every file under ``root`` except the SQLite databases and their journals, and the backbone graphs
    fetched for the served model."""
    if not root.exists():
        return []
    databases = ("feedback.db", "ratelimits.db")
    graphs = root / "graphs"
    return sorted(
        p for p in root.rglob("*") if p.is_file() and not p.name.startswith(databases) and graphs not in p.parents
    )
