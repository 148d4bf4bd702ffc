"""errors.py: how every refusal reaches a client (status, JSON message, Retry-After), and that an
anonymous client never sees the details of an unexpected error while the log does."""

from __future__ import annotations

import errno
import logging

import pytest
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
