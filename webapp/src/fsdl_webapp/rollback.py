"""Roll ``@production`` back to a version served before it, as the MLflow user who asks.

Two logins guard it. No anonymous request gets this far: the page and the API ask for the web app's
own login first (:func:`fsdl_webapp.access.login_required`, throttled per client and per account),
so nobody can test MLflow passwords through the public app. Then the person's MLflow user and
password, sent in the request's body, are passed on to MLflow's REST API for this one request and
never kept: MLflow decides whether that user may move the alias, as it does in its own UI, and
records the change as any promotion. The web app's own MLflow account only reads. The version rolled
back to gets tags saying from which version, by whom and when (``promotion_decision`` like the DAG's
guarded promotion).
"""

from __future__ import annotations

import base64
import logging
import re
import time
from typing import Any

import requests
from flask import Blueprint, current_app, jsonify, render_template, request

from fsdl_lib import tracking
from fsdl_webapp.access import login_required, username
from fsdl_webapp.errors import ApiError, ConflictError
from fsdl_webapp.services import get_model_service, get_records
from fsdl_webapp.throttle import client_address, note_failed_login

bp = Blueprint("rollback", __name__)
log = logging.getLogger(__name__)

VERSION = re.compile(r"^[1-9][0-9]{0,8}$")
TIMEOUT = 20
MAX_LOGIN = 256


class RegistryError(ApiError):
    """MLflow refused or failed; ``status`` is what the client is told."""


class MlflowAs:
    """MLflow's REST API with one person's login."""

    def __init__(self, tracking_uri: str, user: str, password: str) -> None:
        self.api = f"{tracking_uri.rstrip('/')}/api/2.0/mlflow"
        # UTF-8, as MLflow reads it (requests would encode Latin-1 only and fail on other names).
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        self.headers = {"Authorization": f"Basic {token}"}
        self.user = user

    def call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response = requests.request(method, f"{self.api}/{path}", headers=self.headers, timeout=TIMEOUT, **kwargs)
        except requests.RequestException as exc:
            log.error("rollback: MLflow at %s is unreachable: %s", self.api, exc)
            raise RegistryError("the model registry cannot be reached; try again later", status=502) from None
        if response.status_code == 401:
            note_failed_login()  # counts against the web app's login budgets too
            log.warning("rollback: MLflow refused the login of %r from %s", self.user[:64], client_address())
            raise RegistryError("MLflow refused this login", status=401)
        if response.status_code == 403:
            raise RegistryError(
                f"MLflow user {self.user!r} may not move aliases of this model (an MLflow admin can grant it)",
                status=403,
            )
        if not response.ok:
            log.error("rollback: MLflow answered %s to %s %s: %s", response.status_code, method, path,
                      response.text[:500])  # fmt: skip
            raise RegistryError("the model registry could not do it (the server log has the details)", status=502)
        return dict(response.json() or {})


def mlflow_login(body: dict[str, Any]) -> tuple[str, str]:
    """The MLflow user and password a rollback carries; any string that cannot be one is a 400."""
    user, password = body.get("mlflow_username"), body.get("mlflow_password")
    for name, value in (("mlflow_username", user), ("mlflow_password", password)):
        if not isinstance(value, str) or not value or len(value) > MAX_LOGIN:
            raise ApiError(f"{name} must be your MLflow login, a string of 1 to {MAX_LOGIN} characters")
        if not value.isprintable() or (name == "mlflow_username" and ":" in value):
            raise ApiError(f"{name} holds characters no MLflow login has")
        try:
            value.encode()
        except UnicodeEncodeError:
            raise ApiError(f"{name} is not valid text") from None
    return user, password  # type: ignore[return-value]


@bp.get("/model/rollback")
@login_required
def page():
    service = get_model_service()
    served = service.current
    previous = get_records().served.previous(served.version) if served else None
    return render_template("rollback.html", served=served, previous=previous)


@bp.post("/api/v1/model/rollback")
@login_required
def rollback():
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ApiError(
            'send a JSON object: {"from_version": ..., "to_version": ..., "mlflow_username": ..., '
            '"mlflow_password": ...}'
        )
    from_version, to_version = body.get("from_version"), body.get("to_version")
    if not all(isinstance(v, str) and VERSION.match(v) for v in (from_version, to_version)):
        raise ApiError("from_version and to_version must be version numbers, as strings")
    user, password = mlflow_login(body)
    service = get_model_service()
    if to_version not in get_records().served.previous_versions(from_version):
        raise ApiError(f"version {to_version} has not served here; a rollback goes "
                       "back to a version that served before (the model page lists them)")  # fmt: skip
    name, alias = service.name, service.alias
    mlflow = MlflowAs(current_app.config["FSDL_SETTINGS"].mlflow_tracking_uri, user, password)
    current = mlflow.call("GET", "registered-models/alias", params={"name": name, "alias": alias})
    now_serving = str(current.get("model_version", {}).get("version", ""))
    if now_serving != from_version:
        raise ConflictError(f"@{alias} is version {now_serving or 'none'} now, not {from_version}; reload the page")
    decided = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    tags = {
        tracking.TAG_PROMOTION_DECISION: f"rolled back from version {from_version} by {user} in the web app",
        "rolled_back_from": from_version,
        "rolled_back_by": user,
        "rolled_back_at": decided,
    }
    # The record first, then the move; a move that fails takes its record back (nothing half-done).
    for key, value in tags.items():
        mlflow.call("POST", "model-versions/set-tag", json={"name": name, "version": to_version, "key": key,
                                                              "value": value})  # fmt: skip
    try:
        mlflow.call("POST", "registered-models/alias", json={"name": name, "alias": alias, "version": to_version})
    except RegistryError:
        for key in tags:
            try:
                mlflow.call("DELETE", "model-versions/delete-tag", json={"name": name, "version": to_version,
                                                                         "key": key})  # fmt: skip
            except RegistryError:
                log.error("rollback: tag %s of version %s could not be removed after the failed move", key, to_version)
        raise
    log.warning("rollback: %s (logged in to the web app as %s) moved %s@%s from version %s back to %s", user,
                username(), name, alias, from_version, to_version)  # fmt: skip
    service.refresh()  # serve it now rather than at the next poll
    served = service.current
    return jsonify(
        status="rolled back",
        model=name,
        alias=alias,
        from_version=from_version,
        to_version=to_version,
        serving=served.version if served else None,
        recorded=tags,
    )
