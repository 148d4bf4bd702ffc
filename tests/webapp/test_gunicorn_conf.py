"""The web app as gunicorn runs it (fsdl_webapp.gunicorn_conf): the page, concurrent answers that lose
nothing, and stalled clients (slowloris) that starve neither requests nor health checks."""

from __future__ import annotations

import socket
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor

import psutil
import pytest
import requests

from fsdl_tools.clients import wait_until
from tests.conftest import SAMPLE_DIR

pytestmark = pytest.mark.slow


def test_gunicorn_serves_the_page_and_refuses_bad_uploads(webapp_server):
    page = requests.get(webapp_server.url, timeout=10)
    assert page.status_code == 200
    assert "Classify" in page.text
    bad = requests.post(f"{webapp_server.url}/api/v1/predict", files={"image": ("x.jpg", b"nope")}, timeout=10)
    assert bad.status_code == 400
    assert bad.json()["error"].startswith("not a usable image")


def test_hundred_concurrent_feedback_posts_lose_nothing(webapp_server):
    photos = sorted(SAMPLE_DIR.glob("*/*.jpg"))[:100]
    session = requests.Session()

    def classify(path):
        with path.open("rb") as handle:
            response = session.post(f"{webapp_server.url}/api/v1/predict", files={"image": handle}, timeout=60)
        assert response.status_code == 200, response.text
        return response.json()

    with ThreadPoolExecutor(4) as pool:
        predictions = list(pool.map(classify, photos))

    def answer(pred):
        body = {"prediction_id": pred["prediction_id"], "correct": True, "label": pred["label"]}
        return requests.post(f"{webapp_server.url}/api/v1/feedback", json=body, timeout=60)

    with ThreadPoolExecutor(50) as pool:
        responses = list(pool.map(answer, predictions))
    assert [r.status_code for r in responses] == [200] * 100
    feedback = webapp_server.data_dir / "feedback" / "intel_scenes"
    assert not list(feedback.rglob("*.jpg")), "answers reached training before review"

    accepted = webapp_server.decide([{"prediction_id": p["prediction_id"], "action": "accept"} for p in predictions])
    assert accepted.status_code == 200, accepted.text
    stored = sorted(feedback.rglob("*.jpg"))
    assert len(stored) == 100
    with sqlite3.connect(webapp_server.state_dir / "feedback.db") as db:
        rows = db.execute("SELECT count(*) FROM predictions WHERE feedback_label IS NOT NULL").fetchone()[0]
    assert rows == 100
    assert not list((webapp_server.state_dir / "uploads").iterdir())


def accepted(server_pid: int, port: int) -> int:
    """How many connections to ``port`` the server's processes have accepted (hold open as their own)."""
    processes = [psutil.Process(server_pid), *psutil.Process(server_pid).children(recursive=True)]
    return sum(
        1
        for process in processes
        for connection in process.net_connections(kind="tcp")
        if connection.laddr.port == port and connection.status == psutil.CONN_ESTABLISHED
    )


def test_stalled_clients_starve_neither_requests_nor_health_checks(webapp_server):
    """Clients that send half a request and stop (slowloris) must not hold the server's workers:
    health checks and a real prediction still answer at once while they hang on."""
    host, port = "127.0.0.1", webapp_server.port
    stalled = []
    try:
        for i in range(40):
            sock = socket.create_connection((host, port), timeout=5)
            sock.sendall(
                b"POST /api/v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
                b'Content-Length: 1000000\r\n\r\n--b\r\nContent-Disposition: form-data; name="image"; '
                + f'filename="{i}.jpg"\r\n\r\n'.encode()
            )
            stalled.append(sock)
        for _ in range(3):
            sock = socket.create_connection((host, port), timeout=5)
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # headers never finished
            stalled.append(sock)
        # The attack takes hold once the server's workers have accepted every stalled connection.
        wait_until(
            lambda: accepted(webapp_server.proc.pid, port) >= len(stalled), 30, "every stalled connection accepted",
            describe=lambda: f"{accepted(webapp_server.proc.pid, port)} of {len(stalled)} accepted",
        )  # fmt: skip
        start = time.monotonic()
        assert requests.get(f"{webapp_server.url}/healthz", timeout=5).status_code == 200
        assert requests.get(f"{webapp_server.url}/readyz", timeout=5).status_code == 200
        photo = (SAMPLE_DIR / "sea" / "10344.jpg").read_bytes()
        answer = requests.post(f"{webapp_server.url}/api/v1/predict", files={"image": ("p.jpg", photo)}, timeout=10)
        assert answer.status_code == 200
        assert time.monotonic() - start < 10
    finally:
        for sock in stalled:
            sock.close()


def test_the_serving_workers_never_load_torch(webapp_server):
    """In this venv torch and pyarrow are installed (training needs them), but a serving worker answers
    from the exported graph on ONNX Runtime: after a prediction its memory maps hold ONNX Runtime's
    library and none of torch's or pyarrow's."""
    with (SAMPLE_DIR / "sea" / "10344.jpg").open("rb") as handle:
        response = requests.post(f"{webapp_server.url}/api/v1/predict", files={"image": handle}, timeout=60)
    assert response.status_code == 200, response.text
    (worker,) = psutil.Process(webapp_server.proc.pid).children()
    mapped = {m.path for m in worker.memory_maps()}
    assert any("onnxruntime" in path for path in mapped)
    assert not [path for path in mapped if "/torch/" in path or "libtorch" in path or "/pyarrow/" in path]


def test_gunicorn_opens_no_control_socket(webapp_server):
    """gunicorn 25.1 and later open a control socket by default (its `gunicornc` tool manages the server
    through it); the web app needs none, so it offers none."""
    master = psutil.Process(webapp_server.proc.pid)
    listening = [c.laddr for p in (master, *master.children()) for c in p.net_connections(kind="unix") if c.laddr]
    assert not [path for path in listening if path.endswith(".ctl")], listening
    assert "Control server" not in webapp_server.log.read_text()
