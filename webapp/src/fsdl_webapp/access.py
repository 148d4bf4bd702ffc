"""Who may do what, and what a browser may do with the pages.

* :func:`login_required`: the web app's one login (``WEBAPP_REVIEWER_USER`` /
  ``WEBAPP_REVIEWER_PASSWORD``, HTTP basic auth) in front of the review queue and the rollback.
  A refused login counts against the client's and the account's login budgets
  (:mod:`fsdl_webapp.throttle`); anyone refused gets a generic 401, the log gets who and from where.
* :func:`init_app`: security headers on every response. The pages run only the app's own scripts
  and styles (no inline script, so a CSP without ``unsafe-inline`` fits them), may not be framed
  (click-jacking of the review page's one-key decisions), and send no referrer elsewhere.
"""

from __future__ import annotations

import functools
import hmac
import logging
from collections.abc import Callable
from typing import Any

from flask import Flask, Response, current_app, jsonify, request

from fsdl_webapp.throttle import client_address, note_failed_login

log = logging.getLogger(__name__)

REALM = 'Basic realm="fsdl web app", charset="UTF-8"'

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        # Bootstrap draws its form controls with data: images; the classify page previews the upload.
        "img-src 'self' data: blob:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
}


def _matches(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), expected.encode("utf-8", "surrogatepass"))


def refuse(message: str) -> Response:
    """The 401 every refused login gets: no hint of which part was wrong."""
    body = jsonify(error=message) if request.path.startswith("/api/") else f"{message[:1].upper()}{message[1:]}."
    response = current_app.make_response((body, 401))
    response.headers["WWW-Authenticate"] = REALM
    return response


def login_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """Let the request through only with the web app's login."""

    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        web = current_app.config["WEB_SETTINGS"]
        auth = request.authorization
        given_user = (auth.username or "") if auth else ""
        given_password = (auth.password or "") if auth else ""
        if (
            web.reviewer_password
            and _matches(given_user, web.reviewer_user)
            and _matches(given_password, web.reviewer_password)
        ):
            return view(*args, **kwargs)
        if auth is not None:
            note_failed_login()
            log.warning("login refused for user %r from %s on %s", given_user[:64], client_address(), request.path)
        if not web.reviewer_password:
            log.error("WEBAPP_REVIEWER_PASSWORD is not set: the login is closed (make secrets sets it)")
        return refuse("log in as the reviewer")

    return wrapped


def username() -> str:
    """Who logged in (only inside a view behind :func:`login_required`)."""
    return request.authorization.username  # type: ignore[union-attr]


def init_app(app: Flask) -> None:
    @app.after_request
    def security_headers(response: Response) -> Response:
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        if request.authorization is not None or response.status_code == 401:
            response.headers["Cache-Control"] = "no-store"  # what a login showed stays out of caches
        return response
