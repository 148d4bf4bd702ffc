"""The web app's errors and how every response to one looks.

API errors are JSON (``{"error": message}``) with a status code: a view's :class:`ApiError`, a
refusal of the records (:class:`fsdl_webapp.feedback_db.StoreError`) or of the registry
(:class:`fsdl_lib.exceptions.RegistryRefusedError`), whose status this module alone decides
(:data:`STORE_STATUS`, :data:`REGISTRY_STATUS`). Anonymous clients get generic messages for anything unexpected, and
the log gets the details. :func:`init_app` installs it all.
"""

from __future__ import annotations

import errno
import logging
import sqlite3

from flask import Flask, g, jsonify, request
from werkzeug.exceptions import HTTPException

from fsdl_lib.exceptions import RegistryRefusedError
from fsdl_webapp.admission import OverloadedError
from fsdl_webapp.feedback_db import (
    AnswerConflictError,
    InvalidAnswerError,
    PredictionGoneError,
    StoreError,
    TooManyWaitingError,
    UnknownPredictionError,
    UploadsUnavailableError,
)
from fsdl_webapp.metrics import get_metrics

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An error answered as ``{"error": message}`` with ``status``."""

    status = 400

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status


class ConflictError(ApiError):
    status = 409


class UnavailableError(ApiError):
    status = 503


STORE_STATUS: dict[type[StoreError], int] = {
    UnknownPredictionError: 404,
    PredictionGoneError: 410,
    InvalidAnswerError: 400,
    AnswerConflictError: 409,
    TooManyWaitingError: 429,
    UploadsUnavailableError: 503,
}
"""What each refusal of the records is over HTTP."""


REGISTRY_STATUS: dict[str, int] = {"login": 401, "forbidden": 403, "conflict": 409, "unreachable": 502, "failed": 502}
"""What each refusal of the model registry (by its ``reason``) is over HTTP."""


def status_of(exc: StoreError) -> int:
    return next((code for kind, code in STORE_STATUS.items() if isinstance(exc, kind)), 400)


def out_of_space(exc: BaseException) -> bool:
    """A full disk or quota, as the file system or SQLite reports it."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    return isinstance(exc, sqlite3.OperationalError) and "disk is full" in str(exc)


def init_app(app: Flask) -> None:
    """JSON errors for the API; the pages get Flask's error pages, and plain text when unexpected."""

    @app.errorhandler(ApiError)
    def api_error(exc: ApiError):
        return jsonify(error=exc.message), exc.status

    @app.errorhandler(StoreError)
    def store_error(exc: StoreError):
        if isinstance(exc, TooManyWaitingError | UploadsUnavailableError):
            g.retry_after = exc.retry_after
        return jsonify(error=exc.message), status_of(exc)

    @app.errorhandler(OverloadedError)
    def overloaded(exc: OverloadedError):
        get_metrics().shed.inc()
        g.retry_after = exc.retry_after
        return jsonify(error=f"the server is busy; try again in {exc.retry_after} s"), 503

    @app.errorhandler(RegistryRefusedError)
    def registry_error(exc: RegistryRefusedError):
        return jsonify(error=exc.message), REGISTRY_STATUS.get(exc.reason, 502)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        if not request.path.startswith("/api/"):
            return exc
        messages = {
            404: "no such API endpoint",
            405: f"method {request.method} is not allowed here",
            413: f"the upload is larger than the limit of {app.config['WEB_SETTINGS'].max_upload_mb} MiB",
            429: f"this client is over its budget ({exc.description}); try again in the seconds Retry-After says",
        }
        return jsonify(error=messages.get(exc.code or 500, exc.description)), exc.code

    def own_retry_after(response):
        """A refusal's own Retry-After: flask-limiter writes its window's reset into every response's,
        which would tell a client shed for a moment to stay away for a minute."""
        if (seconds := g.get("retry_after")) is not None:
            response.headers["Retry-After"] = str(seconds)
        return response

    # Flask runs the last registered after-request hook first: first in the list, this one runs last.
    app.after_request_funcs.setdefault(None, []).insert(0, own_retry_after)

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        if out_of_space(exc):
            log.error("out of storage space on %s %s: %s", request.method, request.path, exc)
            message = "the server has no storage space left; nothing was saved, try again later"
            if request.path.startswith("/api/"):
                return jsonify(error=message), 507
            return message, 507
        log.exception("unhandled error on %s %s", request.method, request.path)
        if request.path.startswith("/api/"):
            return jsonify(error="internal error; the server log has the details"), 500
        return "Internal error; the server log has the details.", 500
