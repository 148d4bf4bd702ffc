"""Fixtures shared by every test layer, and the rule that CI never skips a layer."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_DIR = ROOT / "samples" / "intel_scenes"
LAYERS = {"lib": "lib", "platform": "platform"}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--no-skips",
        action="store_true",
        default=os.environ.get("FSDL_NO_SKIPS") == "1",
        help="turn every skipped test into a failure (make test and CI use this)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        layer = Path(item.fspath).relative_to(ROOT / "tests").parts[0]
        if layer in LAYERS:
            item.add_marker(LAYERS[layer])


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if report.skipped and item.config.getoption("--no-skips") and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.longrepr = f"skipped, and skips are failures here (--no-skips): {reason}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_http(url: str, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    """Poll ``url`` until it answers 200; fail early if ``proc`` dies."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before {url} answered")
        try:
            response = requests.get(url, timeout=5)
            if response.status_code == 200:
                return
            last = response.status_code
        except requests.RequestException as exc:
            last = exc
        time.sleep(0.5)
    raise TimeoutError(f"{url} did not answer 200 within {timeout} s (last: {last})")


def stop_process_group(proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    """SIGTERM the process group of ``proc`` and wait until every member is gone (then SIGKILL)."""
    deadline = time.monotonic() + timeout
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        while time.monotonic() < deadline or sig == signal.SIGKILL:
            proc.poll()
            try:
                os.killpg(proc.pid, 0)
            except ProcessLookupError:
                proc.wait()
                return
            time.sleep(0.2)
    proc.wait()


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    return SAMPLE_DIR


@pytest.fixture
def scene_split(tmp_path: Path) -> Path:
    """A writable split: four photos of each class copied from the sample."""
    split = tmp_path / "train"
    for label_dir in sorted(p for p in SAMPLE_DIR.iterdir() if p.is_dir()):
        (split / label_dir.name).mkdir(parents=True)
        for photo in sorted(label_dir.glob("*.jpg"))[:4]:
            shutil.copy(photo, split / label_dir.name / photo.name)
    return split


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real MLflow tracking server (SQLite backend, proxied artifacts); yields its URI."""
    home = tmp_path_factory.mktemp("mlflow")
    port = free_port()
    log = (home / "server.log").open("wb")
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    proc = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("mlflow")), "server",
            "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
            "--backend-store-uri", f"sqlite:///{home}/mlflow.db",
            "--artifacts-destination", str(home / "artifacts"),
        ],
        stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
    )  # fmt: skip
    uri = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{uri}/health", timeout=120, proc=proc)
    except Exception:
        stop_process_group(proc)
        raise RuntimeError((home / "server.log").read_text()[-3000:]) from None
    previous = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = uri
    yield uri
    if previous is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = previous
    stop_process_group(proc)
    log.close()
