"""Budgets per client and login throttling (fsdl_webapp.throttle), as strangers meet them.

Each test is an attack that worked before the web app had budgets: one client filling the disk,
guessing the reviewer's password, or spreading guesses over many addresses. Here it gets a 429 with
Retry-After and a JSON message.
"""

from __future__ import annotations

import io
import os

import pytest
import requests

from fsdl_lib.exceptions import ConfigError
from fsdl_webapp.config import WebSettings
from tests.conftest import REVIEWER, WebappServer
from tests.webapp.conftest import DEFAULT_BUDGETS, PHOTO, basic, client_at, make_app, noise_png

# --- logins -------------------------------------------------------------------------------------


def test_thirty_wrong_reviewer_passwords_are_throttled_per_client(public_app):
    attacker = client_at(public_app, "203.0.113.7")
    statuses = [attacker.get("/review", headers=basic("reviewer", f"guess-{i}")).status_code for i in range(30)]
    assert statuses[:5] == [401] * 5  # WEBAPP_LOGIN_LIMIT_CLIENT: 5 a minute
    assert set(statuses[5:]) == {429}
    # Past its budget, the attacker gets nothing out of the right password either.
    right = attacker.get("/review", headers=basic(*REVIEWER))
    assert right.status_code == 429
    assert 0 < int(right.headers["Retry-After"]) <= 60
    # Anyone else logs in as usual.
    assert client_at(public_app, "198.51.100.9").get("/review", headers=basic(*REVIEWER)).status_code == 200
    # Logging in right, or not trying at all, costs nothing.
    reviewer = client_at(public_app, "198.51.100.10")
    assert [reviewer.get("/review").status_code for _ in range(8)] == [401] * 8  # the browser's first request
    assert reviewer.get("/review", headers=basic(*REVIEWER)).status_code == 200


def test_wrong_passwords_from_many_clients_are_throttled_per_account(public_app):
    for i in range(30):  # WEBAPP_LOGIN_LIMIT_ACCOUNT: 30 an hour, whatever the clients
        assert (
            client_at(public_app, f"192.0.2.{i + 1}").get("/review", headers=basic("reviewer", "x")).status_code == 401
        )
    late = client_at(public_app, "192.0.2.200").get("/api/v1/review/queue", headers=basic(*REVIEWER))
    assert late.status_code == 429
    assert "over its budget" in late.json["error"]
    assert int(late.headers["Retry-After"]) > 0


def test_an_ipv6_client_is_its_slash_64(public_app):
    for i in range(5):
        assert (
            client_at(public_app, f"2001:db8:1:2::{i + 1}").get("/review", headers=basic("reviewer", "x")).status_code
            == 401
        )
    # Another address of the same /64 is the same subscriber: throttled too; another /64 is not.
    assert (
        client_at(public_app, "2001:db8:1:2:ffff::9").get("/review", headers=basic("reviewer", "x")).status_code == 429
    )
    assert client_at(public_app, "2001:db8:1:3::1").get("/review", headers=basic(*REVIEWER)).status_code == 200


# --- budgets (through gunicorn, two workers sharing one store) ------------------------------------


@pytest.fixture
def two_worker_server(tmp_path, production_model, mlflow_server):
    env = {
        name: str(value)
        for name, value in WebSettings().as_environment().items()
        if "LIMIT" in name or "BUDGET" in name
    }
    server = WebappServer(tmp_path, production_model, WEBAPP_WORKERS="2", **env).start()
    yield server
    server.stop()


def test_one_client_cannot_fill_the_disk_with_predictions_and_answers(two_worker_server):
    """Before: 8 uploads of about 1 MiB with answers in 1.3 s, none throttled, all kept for review."""
    url = two_worker_server.url
    answered = []
    for i in range(25):
        response = requests.post(f"{url}/api/v1/predict", files={"image": (f"{i}.jpg", PHOTO)}, timeout=60)
        if response.status_code == 429:
            break
        assert response.status_code == 200, response.text
        answered.append(response.json())
    assert len(answered) == 20  # WEBAPP_RATE_LIMIT_PREDICT: 20 a minute, counted across both workers
    assert "over its budget" in response.json()["error"]
    assert 0 < int(response.headers["Retry-After"]) <= 60
    for prediction in answered:
        wrong = next(c for c in ("buildings", "sea") if c != prediction["label"])
        body = {"prediction_id": prediction["prediction_id"], "correct": False, "label": wrong}
        assert requests.post(f"{url}/api/v1/feedback", json=body, timeout=60).status_code == 200
    again = requests.post(f"{url}/api/v1/feedback", json=body, timeout=60)  # WEBAPP_RATE_LIMIT_FEEDBACK: 20
    assert again.status_code == 429
    assert int(again.headers["Retry-After"]) > 0
    # What one client could keep on the disk in that minute: the budget's worth of uploads, no more.
    assert len(list((two_worker_server.state_dir / "uploads").iterdir())) == 20


def test_the_upload_budget_counts_mebibytes(tmp_path, extractor, production_model):
    app = make_app(tmp_path, production_model, **{**DEFAULT_BUDGETS, "upload_budget": "5/hour"})
    client = client_at(app, "203.0.113.80")
    big = noise_png(2)  # about 2 MiB: costs 3 of the 5
    assert 2 * 1024 * 1024 < len(big) < 3 * 1024 * 1024
    first = client.post(
        "/api/v1/predict", data={"image": (io.BytesIO(big), "a.png")}, content_type="multipart/form-data"
    )
    assert first.status_code == 200, first.json
    second = client.post(
        "/api/v1/predict", data={"image": (io.BytesIO(big), "b.png")}, content_type="multipart/form-data"
    )
    assert second.status_code == 429
    assert int(second.headers["Retry-After"]) > 0
    # A refused request counts too: a client that keeps pushing past its budget stays refused.
    small = client.post(
        "/api/v1/predict", data={"image": (io.BytesIO(PHOTO), "c.jpg")}, content_type="multipart/form-data"
    )
    assert small.status_code == 429
    # Another client has its own budget.
    other = client_at(app, "203.0.113.81").post(
        "/api/v1/predict", data={"image": (io.BytesIO(big), "d.png")}, content_type="multipart/form-data"
    )
    assert other.status_code == 200


def test_budgets_that_cannot_be_read_stop_the_app_naming_the_variable(tmp_path, extractor, production_model):
    with pytest.raises(ConfigError, match="WEBAPP_RATE_LIMIT_PREDICT"):
        make_app(tmp_path, production_model, rate_limit_predict="lots")


def test_the_budget_store_is_shared_and_outlives_a_restart(tmp_path, extractor, production_model):
    first = client_at(make_app(tmp_path, production_model, **DEFAULT_BUDGETS), "203.0.113.90")
    for _ in range(5):
        assert first.get("/review", headers=basic("reviewer", "x")).status_code == 401
    restarted = client_at(make_app(tmp_path, production_model, **DEFAULT_BUDGETS), "203.0.113.90")
    assert restarted.get("/review", headers=basic(*REVIEWER)).status_code == 429
    assert os.path.exists(tmp_path / "webapp" / "ratelimits.db")
