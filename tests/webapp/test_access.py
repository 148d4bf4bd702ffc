"""Who may do what (fsdl_webapp.access): the reviewer's login, any string as a login, the rollback
that is no password oracle, and what a browser may do with the pages (security headers, no inline
script).

The attacks here worked before the web app had its logins and headers; now each gets a 4xx that
says why.
"""

from __future__ import annotations

import base64

import pytest

from tests.conftest import REVIEWER, mlflow_admin
from tests.webapp.conftest import basic, client_at


@pytest.mark.parametrize("auth", [None, ("reviewer", "wrong"), ("someone", REVIEWER[1])], ids=str)
def test_reviewing_needs_the_reviewer_login(client, auth):
    headers = basic(*auth) if auth else {}
    for path in ("/api/v1/review/queue", "/api/v1/review/decisions", "/review"):
        response = client.get(path, headers=headers)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].startswith("Basic")
    response = client.post("/api/v1/review/decisions", json={"decisions": []}, headers=headers)
    assert response.status_code == 401
    assert response.json == {"error": "log in as the reviewer"}


@pytest.mark.parametrize(
    "user",
    ["ünïcødé", "名前", "emoji😀", "nul\x00byte", "x" * 5000, ""],
    ids=["latin1", "cjk", "emoji", "nul", "long", "empty"],
)
def test_any_login_string_gets_a_4xx_never_a_500(public_app, user):
    client = client_at(public_app, "203.0.113.50")
    raw = base64.b64encode(f"{user}:password".encode()).decode()
    for path in ("/review", "/api/v1/review/queue", "/model/rollback"):
        response = client.get(path, headers={"Authorization": f"Basic {raw}"})
        assert response.status_code == 401, (path, response.status_code)
    body = {"from_version": "2", "to_version": "1", "mlflow_username": user, "mlflow_password": "pw"}
    response = client.post("/api/v1/model/rollback", json=body, headers=basic(*REVIEWER))
    assert 400 <= response.status_code < 500
    assert "error" in response.json


def test_no_anonymous_request_reaches_mlflows_login(public_app):
    """Before: a wrong MLflow password got 401 and a right one 409, about 12 guesses a second."""
    client = client_at(public_app, "203.0.113.60")
    answers = []
    for password in (mlflow_admin()[1], "wrong-password"):
        body = {"from_version": "9", "to_version": "8", "mlflow_username": "admin", "mlflow_password": password}
        for headers in ({}, basic("admin", password)):  # the MLflow login in the body, or as the old API took it
            response = client.post("/api/v1/model/rollback", json=body, headers=headers)
            answers.append((response.status_code, response.json, response.headers.get("WWW-Authenticate")))
    assert len(set(map(str, answers))) == 1, answers  # the same answer, right password or not
    assert answers[0][0] == 401
    assert answers[0][2].startswith('Basic realm="fsdl web app"')


@pytest.mark.parametrize(
    ("path", "login"),
    [("/", False), ("/model", False), ("/monitoring", False), ("/review", True), ("/review", False),
     ("/api/v1/model", False), ("/api/v1/stats", False), ("/nowhere", False), ("/static/app.js", False)],
)  # fmt: skip
def test_every_page_has_the_security_headers(public_app, path, login):
    response = public_app.test_client().get(path, headers=basic(*REVIEWER) if login else {})
    headers = response.headers
    assert headers["X-Frame-Options"] == "DENY"  # no site may frame the review page's one-key accept
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    assert "unsafe-inline" not in headers["Content-Security-Policy"]
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "no-referrer"
    if login or response.status_code == 401:
        assert headers["Cache-Control"] == "no-store"


def test_the_pages_carry_no_inline_script(public_app):
    client = public_app.test_client()
    for path, headers in (("/", {}), ("/monitoring", {}), ("/model", {}), ("/review", basic(*REVIEWER))):
        html = client.get(path, headers=headers).get_data(as_text=True)
        for tag in html.split("<script")[1:]:
            opening = tag.split(">", 1)[0]
            assert "src=" in opening or 'type="application/json"' in opening, (path, opening)
        assert " style=" not in html, path
