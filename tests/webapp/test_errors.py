"""errors.py: how every refusal reaches a client (status, JSON message, Retry-After), that an
anonymous client never sees the details of an unexpected error while the log does, and a full disk
under a running server: a 507 that saves nothing and loses nothing."""

from __future__ import annotations

import errno
import logging
import shutil
from pathlib import Path

import pytest
import requests
from flask import Flask

from fsdl_lib.exceptions import RegistryRefusedError
from fsdl_webapp import errors
from fsdl_webapp.config import WebSettings
from fsdl_webapp.feedback_db import (
    AnswerConflictError,
    InvalidAnswerError,
    PredictionGoneError,
    TooManyWaitingError,
    UnknownPredictionError,
)
from tests.conftest import REVIEWER, WebappServer
from tests.webapp.conftest import PHOTO, noise_png


@pytest.fixture
def client():
    app = Flask("errors-test")
    app.config["WEB_SETTINGS"] = WebSettings.from_env({})
    raised: dict[str, BaseException] = {}

    @app.post("/api/v1/raise/<name>")
    def raise_api(name: str):
        raise raised[name]

    @app.get("/page/<name>")
    def raise_page(name: str):
        raise raised[name]

    errors.init_app(app)
    client = app.test_client()
    client.raised = raised
    return client


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (UnknownPredictionError("no prediction abc"), 404),
        (PredictionGoneError("expired"), 410),
        (InvalidAnswerError("a correct answer names the predicted class"), 400),
        (AnswerConflictError("already answered"), 409),
        (TooManyWaitingError("25 answers wait already"), 429),
        (RegistryRefusedError("login", "MLflow refused this login"), 401),
        (RegistryRefusedError("forbidden", "may not move aliases"), 403),
        (RegistryRefusedError("conflict", "@production is version 3 now"), 409),
        (RegistryRefusedError("unreachable", "the model registry cannot be reached"), 502),
        (RegistryRefusedError("failed", "the model registry could not do it"), 502),
        (errors.ApiError("send a JSON object"), 400),
        (errors.UnavailableError("no model yet"), 503),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, Exception) else str(value),
)
def test_each_refusal_has_its_status_and_its_message(client, error, status):
    client.raised["it"] = error
    response = client.post("/api/v1/raise/it")
    assert response.status_code == status
    assert response.json == {"error": error.message}
    assert ("Retry-After" in response.headers) == isinstance(error, TooManyWaitingError)


def test_an_unexpected_error_is_generic_for_the_client_and_whole_in_the_log(client, caplog):
    client.raised["bug"] = KeyError("secret_column_name")
    with caplog.at_level(logging.ERROR):
        api = client.post("/api/v1/raise/bug")
        page = client.get("/page/bug")
    assert api.status_code == 500
    assert api.json == {"error": "internal error; the server log has the details"}
    assert page.status_code == 500
    assert "secret_column_name" not in api.get_data(as_text=True) + page.get_data(as_text=True)
    assert "secret_column_name" in caplog.text


def test_a_full_disk_is_507_saying_nothing_was_saved(client):
    client.raised["full"] = OSError(errno.ENOSPC, "No space left on device")
    response = client.post("/api/v1/raise/full")
    assert response.status_code == 507
    assert "nothing was saved" in response.json["error"]


def test_unknown_api_paths_answer_json(client):
    response = client.get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert response.json == {"error": "no such API endpoint"}


# --- a real full disk, under gunicorn -------------------------------------------------------------


def fill(folder: Path) -> Path:
    """Fill the file system of ``folder`` until a write fails with ENOSPC; return the filler file."""
    filler = folder / "filler"
    with filler.open("wb") as out:
        try:
            while True:
                out.write(b"\0" * 65536)
                out.flush()
        except OSError:
            pass
    return filler


@pytest.mark.slow
def test_a_full_disk_is_a_507_that_saves_nothing_and_loses_nothing(tmp_path, production_model, mlflow_server):
    """The web app's state and feedback folders on small file systems of their own (tmpfs in a
    private mount namespace, which needs no root): full, each write fails with ENOSPC."""
    if shutil.which("unshare") is None:
        pytest.fail("unshare (util-linux) is needed to give the web app a small file system of its own")
    # The backbone graph (about 100 MB) is kept outside the small state folder.
    server = WebappServer(tmp_path, production_model, WEBAPP_GRAPH_DIR=str(tmp_path / "graphs"))
    feedback = server.data_dir / "feedback" / "intel_scenes"
    for folder in (server.state_dir, feedback):
        folder.mkdir(parents=True)
    script = (
        f'mount -t tmpfs -o size=4m tmpfs "{server.state_dir}" && '
        f'mount -t tmpfs -o size=1m tmpfs "{feedback}" && exec "$@"'
    )
    server.wrapper = ["unshare", "--map-root-user", "--mount", "sh", "-c", script, "sh"]
    server.start()
    try:
        # The namespace's view of the folders, as the server process sees them.
        root = Path(f"/proc/{server.proc.pid}/root")
        state, feedback_seen = root / str(server.state_dir).lstrip("/"), root / str(feedback).lstrip("/")
        stats = f"{server.url}/api/v1/stats"

        # A prediction whose upload does not fit: 507, no upload file, no row, and the server goes on.
        filler = fill(state)
        big = requests.post(f"{server.url}/api/v1/predict", files={"image": ("big.png", noise_png(2))}, timeout=60)
        assert big.status_code == 507, big.text
        assert "storage space" in big.json()["error"]
        assert not [p for p in (state / "uploads").iterdir()], "a partial upload was left behind"
        filler.unlink()
        assert requests.get(stats, timeout=30).json()["versions"] == []
        assert requests.get(f"{server.url}/healthz", timeout=10).status_code == 200

        # An answer waits for review and writes nothing under the feedback folder, full or not.
        answer = requests.post(f"{server.url}/api/v1/predict", files={"image": ("p.jpg", PHOTO)}, timeout=60).json()
        wrong = next(c for c in ("sea", "street") if c != answer["label"])
        body = {"prediction_id": answer["prediction_id"], "correct": False, "label": wrong}
        filler = fill(feedback_seen)
        pending = requests.post(f"{server.url}/api/v1/feedback", json=body, timeout=60)
        assert pending.status_code == 200, pending.text
        assert pending.json()["review_state"] == "pending"

        # Its acceptance, whose labelled copy does not fit: 507, no file, the decision undone.
        decision = [{"prediction_id": answer["prediction_id"], "action": "accept"}]
        refused = server.decide(decision)
        assert refused.status_code == 507, refused.text
        assert "storage space" in refused.json()["error"]
        assert sorted(p.name for p in feedback_seen.rglob("*") if p.is_file()) == ["filler"]
        queue = requests.get(f"{server.url}/api/v1/review/queue", auth=REVIEWER, timeout=30).json()
        assert [item["prediction_id"] for item in queue["items"]] == [answer["prediction_id"]]
        assert requests.get(f"{server.url}/api/v1/review/decisions", auth=REVIEWER, timeout=30).json() == {
            "decisions": []
        }
        assert len(list((state / "uploads").iterdir())) == 1

        # Space again: the same decision goes through, nothing was lost.
        filler.unlink()
        accepted = server.decide(decision)
        assert accepted.status_code == 200, accepted.text
        stored = [p for p in feedback_seen.rglob("*.jpg")]
        assert [p.read_bytes() for p in stored] == [PHOTO]
        assert stored[0].parent.name == wrong
    finally:
        server.stop()
