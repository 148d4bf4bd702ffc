"""Faults a deployed web app meets: the registry down at start, a full disk."""

from __future__ import annotations

import io
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import requests
from PIL import Image

from tests.conftest import (
    REVIEWER,
    SAMPLE_DIR,
    WebappServer,
    free_port,
    start_mlflow_server,
    stop_process_group,
    wait_for_http,
)

pytestmark = pytest.mark.slow


def test_starts_and_answers_health_checks_while_mlflow_is_down_then_serves_when_it_returns(
    tmp_path, production_model, mlflow_server
):
    """The registry is unreachable at start: /healthz answers at once, /readyz says why it is not
    ready, and the model is served once an MLflow server (on the same store) comes up."""
    port = free_port()
    server = WebappServer(tmp_path, production_model, MLFLOW_TRACKING_URI=f"http://127.0.0.1:{port}")
    server.launch()
    mlflow = None
    try:
        started = time.monotonic()
        wait_for_http(f"{server.url}/healthz", 120, server.proc)
        print(f"healthz answered {time.monotonic() - started:.1f} s after start with MLflow down")
        ready = requests.get(f"{server.url}/readyz", timeout=10)
        assert ready.status_code == 503
        assert ready.json()["status"] == "not ready"
        assert "127.0.0.1" not in ready.text  # no internal address for anonymous clients
        assert requests.get(f"{server.url}/api/v1/model", timeout=10).status_code == 503

        mlflow = start_mlflow_server(Path(os.environ["FSDL_TEST_MLFLOW_HOME"]), port, tmp_path / "mlflow.log")
        wait_for_http(f"{server.url}/readyz", 180, server.proc)
        assert requests.get(f"{server.url}/api/v1/model", timeout=10).json()["version"] == "1"
    finally:
        server.stop()
        if mlflow is not None:
            stop_process_group(mlflow)


def noise_png(side: int) -> bytes:
    """A PNG that does not compress: about 3 x side² bytes."""
    buffer = io.BytesIO()
    pixels = np.random.default_rng(0).integers(0, 256, (side, side, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def fill(folder: Path) -> Path:
    """Fill the file system of ``folder`` until a write fails with ENOSPC; return the filler file."""
    filler = folder / "filler"
    with filler.open("wb") as out:
        try:
            while True:
                out.write(b"\0" * 65536)
                out.flush()
        except OSError:
            pass
    return filler


def test_a_full_disk_is_a_507_that_saves_nothing_and_loses_nothing(tmp_path, production_model, mlflow_server):
    """The web app's state and feedback folders on small file systems of their own (tmpfs in a
    private mount namespace, which needs no root): full, each write fails with ENOSPC."""
    if shutil.which("unshare") is None:
        pytest.fail("unshare (util-linux) is needed to give the web app a small file system of its own")
    server = WebappServer(tmp_path, production_model)
    feedback = server.data_dir / "feedback" / "intel_scenes"
    for folder in (server.state_dir, feedback):
        folder.mkdir(parents=True)
    script = (
        f'mount -t tmpfs -o size=4m tmpfs "{server.state_dir}" && '
        f'mount -t tmpfs -o size=1m tmpfs "{feedback}" && exec "$@"'
    )
    server.wrapper = ["unshare", "--map-root-user", "--mount", "sh", "-c", script, "sh"]
    server.start()
    try:
        # The namespace's view of the folders, as the server process sees them.
        root = Path(f"/proc/{server.proc.pid}/root")
        state, feedback_seen = root / str(server.state_dir).lstrip("/"), root / str(feedback).lstrip("/")
        stats = f"{server.url}/api/v1/stats"
        photo = (SAMPLE_DIR / "forest" / "10078.jpg").read_bytes()

        # A prediction whose upload does not fit: 507, no upload file, no row, and the server goes on.
        filler = fill(state)
        big = requests.post(f"{server.url}/api/v1/predict", files={"image": ("big.png", noise_png(900))}, timeout=60)
        assert big.status_code == 507, big.text
        assert "storage space" in big.json()["error"]
        assert not [p for p in (state / "uploads").iterdir()], "a partial upload was left behind"
        filler.unlink()
        assert requests.get(stats, timeout=30).json()["versions"] == []
        assert requests.get(f"{server.url}/healthz", timeout=10).status_code == 200

        # An answer waits for review and writes nothing under the feedback folder, full or not.
        answer = requests.post(f"{server.url}/api/v1/predict", files={"image": ("p.jpg", photo)}, timeout=60).json()
        wrong = next(c for c in ("sea", "street") if c != answer["label"])
        body = {"prediction_id": answer["prediction_id"], "correct": False, "label": wrong}
        filler = fill(feedback_seen)
        pending = requests.post(f"{server.url}/api/v1/feedback", json=body, timeout=60)
        assert pending.status_code == 200, pending.text
        assert pending.json()["review_state"] == "pending"

        # Its acceptance, whose labelled copy does not fit: 507, no file, the decision undone.
        decision = [{"prediction_id": answer["prediction_id"], "action": "accept"}]
        refused = server.decide(decision)
        assert refused.status_code == 507, refused.text
        assert "storage space" in refused.json()["error"]
        assert sorted(p.name for p in feedback_seen.rglob("*") if p.is_file()) == ["filler"]
        queue = requests.get(f"{server.url}/api/v1/review/queue", auth=REVIEWER, timeout=30).json()
        assert [item["prediction_id"] for item in queue["items"]] == [answer["prediction_id"]]
        assert requests.get(f"{server.url}/api/v1/review/decisions", auth=REVIEWER, timeout=30).json() == {
            "decisions": []
        }
        assert len(list((state / "uploads").iterdir())) == 1

        # Space again: the same decision goes through, nothing was lost.
        filler.unlink()
        accepted = server.decide(decision)
        assert accepted.status_code == 200, accepted.text
        stored = [p for p in feedback_seen.rglob("*.jpg")]
        assert [p.read_bytes() for p in stored] == [photo]
        assert stored[0].parent.name == wrong
    finally:
        server.stop()


def test_stalled_clients_starve_neither_requests_nor_health_checks(webapp_server):
    """Clients that send half a request and stop (slowloris) must not hold the server's workers:
    health checks and a real prediction still answer at once while they hang on."""
    import socket

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
        time.sleep(1)  # the attack takes hold: the server has accepted them all (nothing to await from outside)
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
