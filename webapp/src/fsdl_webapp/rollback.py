"""Roll ``@production`` back to a version served before it, as the MLflow user who asks.

Two logins guard it. No anonymous request gets this far: the page and the API ask for the web app's
own login first (:func:`fsdl_webapp.access.login_required`, throttled per client and per account),
so nobody can test MLflow passwords through the public app. Then the person's MLflow user and
password, sent in the request's body, are passed on to MLflow's REST API for this one request and
never kept: MLflow decides whether that user may move the alias, as it does in its own UI
(:mod:`fsdl_lib.registry` makes the move and its record). The web app's own MLflow account only reads.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from flask import Blueprint, current_app, jsonify, render_template, request

from fsdl_lib.exceptions import RegistryRefusedError
from fsdl_lib.registry import PersonalRegistry, roll_back
from fsdl_webapp.access import login_required, username
from fsdl_webapp.errors import ApiError
from fsdl_webapp.services import get_model_service, get_records
from fsdl_webapp.throttle import client_address, note_failed_login

bp = Blueprint("rollback", __name__)
log = logging.getLogger(__name__)

VERSION = re.compile(r"^[1-9][0-9]{0,8}$")
MAX_LOGIN = 256


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
    registry = PersonalRegistry(current_app.config["FSDL_SETTINGS"].mlflow_tracking_uri, user, password)
    try:
        tags = roll_back(
            registry, name, alias, from_version=from_version, to_version=to_version, where="in the web app"
        )
    except RegistryRefusedError as exc:
        if exc.reason == "login":
            note_failed_login()  # counts against the web app's login budgets too
            log.warning("rollback: MLflow refused the login of %r from %s", user[:64], client_address())
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
