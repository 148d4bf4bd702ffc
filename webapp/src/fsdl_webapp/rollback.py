"""Roll ``@production`` back to a version served before it, as the MLflow user who asks.

The web app's own MLflow account only reads. A rollback carries the login of the person asking
(HTTP basic auth: their MLflow user and password), which is passed on to MLflow's REST API for this
one request and never kept: MLflow decides whether that user may move the alias, as it does in its
own UI, and records the change as any promotion. The version rolled back to gets tags saying from
which version, by whom and when (``promotion_decision`` like the DAG's guarded promotion).
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any

import requests
from flask import Blueprint, current_app, jsonify, request

from fsdl_webapp.errors import ApiError, ConflictError
from fsdl_webapp.services import get_model_service, get_store

bp = Blueprint("rollback", __name__, url_prefix="/api/v1/model")
log = logging.getLogger(__name__)

VERSION = re.compile(r"^[1-9][0-9]{0,8}$")
TIMEOUT = 20


class RegistryError(ApiError):
    """MLflow refused or failed; ``status`` is what the client is told."""


class MlflowAs:
    """MLflow's REST API with one person's login."""

    def __init__(self, tracking_uri: str, user: str, password: str) -> None:
        self.api = f"{tracking_uri.rstrip('/')}/api/2.0/mlflow"
        self.auth = (user, password)
        self.user = user

    def call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response = requests.request(method, f"{self.api}/{path}", auth=self.auth, timeout=TIMEOUT, **kwargs)
        except requests.RequestException as exc:
            log.error("rollback: MLflow at %s is unreachable: %s", self.api, exc)
            raise RegistryError("the model registry cannot be reached; try again later", status=502) from None
        if response.status_code == 401:
            log.warning("rollback: MLflow refused the login of %r from %s", self.user, request.remote_addr)
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


def previous_versions(current: str) -> list[str]:
    """Versions this server served before ``current``, the most recent first."""
    seen: list[str] = []
    for item in get_store().served_history(limit=200):
        version = item["model_version"]
        if version != current and version not in seen:
            seen.append(version)
    return seen


@bp.post("/rollback")
def rollback():
    auth = request.authorization
    if auth is None or not auth.username or not auth.password:
        response = jsonify(error="log in with your MLflow user and password")
        response.status_code = 401
        response.headers["WWW-Authenticate"] = 'Basic realm="MLflow login", charset="UTF-8"'
        return response
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ApiError('send a JSON object: {"from_version": ..., "to_version": ...}')
    from_version, to_version = body.get("from_version"), body.get("to_version")
    if not all(isinstance(v, str) and VERSION.match(v) for v in (from_version, to_version)):
        raise ApiError("from_version and to_version must be version numbers, as strings")
    service = get_model_service()
    if to_version not in previous_versions(from_version):
        raise ApiError(f"version {to_version} has not served here; a rollback goes "
                       "back to a version that served before (the model page lists them)")  # fmt: skip
    name, alias = service.name, service.alias
    mlflow = MlflowAs(current_app.config["FSDL_SETTINGS"].mlflow_tracking_uri, auth.username, auth.password)
    current = mlflow.call("GET", "registered-models/alias", params={"name": name, "alias": alias})
    now_serving = str(current.get("model_version", {}).get("version", ""))
    if now_serving != from_version:
        raise ConflictError(f"@{alias} is version {now_serving or 'none'} now, not {from_version}; reload the page")
    decided = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    tags = {
        "promotion_decision": f"rolled back from version {from_version} by {auth.username} in the web app",
        "rolled_back_from": from_version,
        "rolled_back_by": auth.username,
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
    log.warning("rollback: %s moved %s@%s from version %s back to %s", auth.username, name, alias, from_version,
                to_version)  # fmt: skip
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
