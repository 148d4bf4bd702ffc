"""Strangers abusing the public web app, through HTTP: budgets, logins, headers, the rollback.

Each test is an attack that worked before the web app had budgets, login throttling, security
headers and a login in front of the rollback; here it must fail, with a 4xx that says why.
"""

from __future__ import annotations

import base64
import io
import os

import numpy as np
import pytest
import requests
from PIL import Image

from fsdl_webapp.config import WebSettings
from fsdl_webapp.throttle import BUDGETS
from tests.conftest import REVIEWER, SAMPLE_DIR, WebappServer, mlflow_admin
from tests.webapp.conftest import make_app

DEFAULT_BUDGETS = {name: getattr(WebSettings(), name) for name in BUDGETS}
"""The budgets every deployment gets unless it sets others."""
PHOTO = (SAMPLE_DIR / "forest" / "10078.jpg").read_bytes()


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def client_at(app, address: str):
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


@pytest.fixture
def public_app(tmp_path, extractor, production_model):
    """The web app with the budgets it ships with."""
    return make_app(tmp_path, extractor, production_model, **DEFAULT_BUDGETS)


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


# --- the rollback is no password oracle -----------------------------------------------------------


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


# --- headers ------------------------------------------------------------------------------------


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


def noise_png(megabytes: float) -> bytes:
    side = int((megabytes * 1024 * 1024 / 3) ** 0.5)
    pixels = np.random.default_rng(0).integers(0, 256, (side, side, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", compress_level=0)
    return buffer.getvalue()


def test_the_upload_budget_counts_mebibytes(tmp_path, extractor, production_model):
    app = make_app(tmp_path, extractor, production_model, **{**DEFAULT_BUDGETS, "upload_budget": "5/hour"})
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
    from fsdl_lib.exceptions import ConfigError

    with pytest.raises(ConfigError, match="WEBAPP_RATE_LIMIT_PREDICT"):
        make_app(tmp_path, extractor, production_model, rate_limit_predict="lots")


def test_the_budget_store_is_shared_and_outlives_a_restart(tmp_path, extractor, production_model):
    first = client_at(make_app(tmp_path, extractor, production_model, **DEFAULT_BUDGETS), "203.0.113.90")
    for _ in range(5):
        assert first.get("/review", headers=basic("reviewer", "x")).status_code == 401
    restarted = client_at(make_app(tmp_path, extractor, production_model, **DEFAULT_BUDGETS), "203.0.113.90")
    assert restarted.get("/review", headers=basic(*REVIEWER)).status_code == 429
    assert os.path.exists(tmp_path / "webapp" / "ratelimits.db")


# --- no metadata kept -----------------------------------------------------------------------------


def test_uploads_are_kept_and_trained_on_without_their_metadata(tmp_path, extractor, production_model):
    """Before: uploads were stored byte for byte, GPS included, and accepted ones went into training so."""
    from fsdl_lib.images import decode_image
    from tests.lib.test_metadata import SECRETS, jpeg_with_everything

    app = make_app(tmp_path, extractor, production_model)
    original = jpeg_with_everything()
    client = client_at(app, "203.0.113.99")
    prediction = client.post(
        "/api/v1/predict", data={"image": (io.BytesIO(original), "phone.jpg")}, content_type="multipart/form-data"
    ).json
    (upload,) = (tmp_path / "webapp" / "uploads").iterdir()
    kept = upload.read_bytes()
    assert not [secret for secret in SECRETS if secret in kept]
    assert np.array_equal(np.asarray(decode_image(kept)[0]), np.asarray(decode_image(original)[0]))
    assert np.array_equal(extractor.extract([decode_image(kept)[0]]), extractor.extract([decode_image(original)[0]]))

    wrong = next(c for c in ("sea", "street") if c != prediction["label"])
    body = {"prediction_id": prediction["prediction_id"], "correct": False, "label": wrong}
    assert client.post("/api/v1/feedback", json=body).status_code == 200
    reviewer = app.test_client()
    assert reviewer.get(f"/review/image/{prediction['prediction_id']}", headers=basic(*REVIEWER)).data == kept
    decision = reviewer.post(
        "/api/v1/review/decisions",
        json={"decisions": [{"prediction_id": prediction["prediction_id"], "action": "accept"}]},
        headers=basic(*REVIEWER),
    )
    assert decision.status_code == 200, decision.json
    (trained,) = (tmp_path / "data" / "feedback" / "intel_scenes" / wrong).iterdir()
    assert trained.read_bytes() == kept
