"""Rolling @production back: behind the web app's login, then through MLflow, as the person who asks."""

from __future__ import annotations

import base64
import uuid

import mlflow
import pytest

from tests.conftest import MLFLOW_LOGINS, REVIEWER, mlflow_admin
from tests.webapp.conftest import make_app


def login(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


WEBAPP_LOGIN = login(*REVIEWER)


def as_mlflow(user: str, password: str, **body: str) -> dict[str, str]:
    return {**ROLLBACK, **body, "mlflow_username": user, "mlflow_password": password}


@pytest.fixture
def served_twice(tmp_path, extractor, registry):
    """A web app that served version 1, then version 2 (production now)."""
    name = f"scenes-rollback-{uuid.uuid4().hex[:8]}"
    registry.register(name)
    app = make_app(tmp_path, name)
    registry.register(name)
    service = app.extensions["fsdl_model"]
    assert service.refresh()
    assert service.current.version == "2"
    return app, name


def production(name: str) -> str:
    return str(mlflow.MlflowClient().get_model_version_by_alias(name, "production").version)


ROLLBACK = {"from_version": "2", "to_version": "1"}


@pytest.mark.parametrize(
    ("headers", "body", "status", "message"),
    [
        ({}, as_mlflow(*mlflow_admin()), 401, "log in as the reviewer"),
        (login("reviewer", "wrong"), as_mlflow(*mlflow_admin()), 401, "log in as the reviewer"),
        (WEBAPP_LOGIN, as_mlflow("admin", "not-the-password"), 401, "MLflow refused this login"),
        (WEBAPP_LOGIN, as_mlflow("fsdl-webapp", MLFLOW_LOGINS["WEBAPP_MLFLOW_PASSWORD"]), 403, "may not move aliases"),
    ],
    ids=["anonymous", "wrong-webapp-login", "wrong-mlflow-password", "read-only-account"],
)
def test_only_an_mlflow_user_allowed_to_move_the_alias_can_roll_back(served_twice, headers, body, status, message):
    app, name = served_twice
    response = app.test_client().post("/api/v1/model/rollback", json=body, headers=headers)
    assert response.status_code == status
    assert message in response.json["error"]
    assert production(name) == "2"
    assert "rolled_back_by" not in mlflow.MlflowClient().get_model_version(name, "1").tags  # nothing half-done
    if "reviewer" in message:
        assert response.headers["WWW-Authenticate"].startswith("Basic")


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"from_version": "2", "to_version": "7"}, 400, "has not served here"),
        ({"from_version": "1", "to_version": "2"}, 409, "is version 2 now, not 1"),
        ({"from_version": "2"}, 400, "must be version numbers"),
        ({"from_version": 2, "to_version": 1}, 400, "must be version numbers"),
        ("not an object", 400, "send a JSON object"),
    ],
)
def test_bad_or_stale_rollback_requests_are_refused_with_a_reason(served_twice, body, status, message):
    app, name = served_twice
    if isinstance(body, dict):
        body = {**body, "mlflow_username": mlflow_admin()[0], "mlflow_password": mlflow_admin()[1]}
    response = app.test_client().post("/api/v1/model/rollback", json=body, headers=WEBAPP_LOGIN)
    assert response.status_code == status
    assert message in response.json["error"]
    assert production(name) == "2"


def test_admin_rolls_back_to_the_previous_version_and_mlflow_records_it(served_twice):
    app, name = served_twice
    client = app.test_client()
    assert "Roll back to version 1" in client.get("/model").get_data(as_text=True)
    assert client.get("/model/rollback").status_code == 401  # the form is behind the web app's login
    form = client.get("/model/rollback", headers=WEBAPP_LOGIN).get_data(as_text=True)
    assert 'id="rollback-form"' in form
    assert "Roll back to version 1" in form

    response = client.post("/api/v1/model/rollback", json=as_mlflow(*mlflow_admin()), headers=WEBAPP_LOGIN)
    assert response.status_code == 200, response.json
    assert (response.json["to_version"], response.json["serving"]) == ("1", "1")
    assert production(name) == "1"
    tags = mlflow.MlflowClient().get_model_version(name, "1").tags
    assert tags["rolled_back_from"] == "2"
    assert tags["rolled_back_by"] == mlflow_admin()[0]
    assert tags["promotion_decision"].startswith("rolled back from version 2 by")
    history = app.extensions["fsdl_records"].served.history()
    assert [item["model_version"] for item in history] == ["1", "2", "1"]

    again = client.post("/api/v1/model/rollback", json=as_mlflow(*mlflow_admin()), headers=WEBAPP_LOGIN)
    assert again.status_code == 409  # production moved meanwhile: the page was stale
    assert "is version 1 now" in again.json["error"]
    assert "Roll back to version 2" in client.get("/model").get_data(as_text=True)
