"""Clients of the running platform: Airflow's REST API (`/api/v2`) and the web app's JSON API.

Used by `make demo`, the end-to-end and stack tests, and the flywheel benchmark.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import requests

from fsdl_deploy.secrets import read_env_file

T = TypeVar("T")


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def free_port_range(count: int, host: str = "127.0.0.1") -> int:
    """The first of ``count`` consecutive TCP ports that nothing listens on right now."""
    for _ in range(100):
        first = free_port(host)
        if first + count > 65536:
            continue
        try:
            with contextlib.ExitStack() as held:
                for port in range(first, first + count):
                    sock = held.enter_context(socket.socket())
                    sock.bind((host, port))
        except OSError:
            continue
        return first
    raise RuntimeError(f"no {count} consecutive free ports on {host}")


def wait_until(
    condition: Callable[[], T],
    timeout: float,
    what: str,
    *,
    interval: float = 0.5,
    describe: Callable[[], str] | None = None,
) -> T:
    """Call ``condition`` until it returns something true, and return that; after ``timeout``
    seconds raise :class:`TimeoutError` saying ``what`` did not happen (and ``describe()``)."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            detail = describe() if describe is not None else ""
            raise TimeoutError(f"{what} did not happen within {timeout:.0f} s" + (f": {detail}" if detail else ""))
        time.sleep(interval)


def wait_for_http(
    url: str, timeout: float, proc: subprocess.Popen[bytes] | None = None, auth: tuple[str, str] | None = None
) -> None:
    """Poll ``url`` (with the basic-auth login ``auth``) until it answers 200; fail early, saying so,
    if ``proc`` exits first."""
    last: object = None

    def answers() -> bool:
        nonlocal last
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before {url} answered")
        try:
            last = requests.get(url, timeout=5, auth=auth).status_code
        except requests.RequestException as exc:
            last = exc
        return last == 200

    wait_until(answers, timeout, f"{url} answering 200", describe=lambda: f"last: {last}")


def local_logins(storage_dir: Path) -> dict[str, str]:
    """The logins a local run mode generated on its first start (scripts/local-env.sh keeps them in
    ``<storage>/airflow/secrets.env``), for scripts and tests that play the platform's users."""
    path = Path(storage_dir) / "airflow" / "secrets.env"
    if not path.exists():
        raise FileNotFoundError(f"{path}: no logins yet (the platform writes them on its first start)")
    return read_env_file(path)


class AirflowClient:
    """A small client of Airflow 3's REST API with a JWT from `/auth/token`."""

    def __init__(self, base_url: str, username: str, password: str, timeout: float = 30) -> None:
        self.base_url = base_url.rstrip("/")
        self.username, self.password = username, password
        self.timeout = timeout
        self.session = requests.Session()

    def login(self) -> None:
        response = self.session.post(
            f"{self.base_url}/auth/token",
            json={"username": self.username, "password": self.password},
            timeout=self.timeout,
        )
        response.raise_for_status()
        self.session.headers["Authorization"] = f"Bearer {response.json()['access_token']}"

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        url = f"{self.base_url}/api/v2{path}"
        response = self.session.request(method, url, timeout=self.timeout, **kwargs)
        if response.status_code == 401:  # token expired: log in again once
            self.login()
            response = self.session.request(method, url, timeout=self.timeout, **kwargs)
        response.raise_for_status()
        return response.json()

    def dag_ids(self) -> set[str]:
        return {d["dag_id"] for d in self.request("GET", "/dags", params={"limit": 100})["dags"]}

    def wait_for_dags(self, dag_ids: set[str], timeout: float) -> None:
        wait_until(
            lambda: dag_ids <= self.dag_ids(),
            timeout,
            f"Airflow loading {sorted(dag_ids)}",
            interval=2,
            describe=lambda: f"missing {sorted(dag_ids - self.dag_ids())}",
        )

    def trigger(self, dag_id: str, conf: dict[str, Any] | None = None) -> str:
        body = {"logical_date": None, "conf": conf or {}}
        return str(self.request("POST", f"/dags/{dag_id}/dagRuns", json=body)["dag_run_id"])

    def run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        return dict(self.request("GET", f"/dags/{dag_id}/dagRuns/{run_id}"))

    def runs(self, dag_id: str) -> list[dict[str, Any]]:
        return list(self.request("GET", f"/dags/{dag_id}/dagRuns", params={"limit": 100})["dag_runs"])

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float, poll: float = 2) -> dict[str, Any]:
        """Wait until the run ends; return it (check its ``state``)."""

        def ended() -> dict[str, Any] | None:
            run = self.run(dag_id, run_id)
            return run if run["state"] in ("success", "failed") else None

        return wait_until(
            ended, timeout, f"the end of {dag_id} run {run_id}", interval=poll,
            describe=lambda: f"still {self.run(dag_id, run_id)['state']}",
        )  # fmt: skip

    def wait_for_new_run(self, dag_id: str, known: set[str], timeout: float, poll: float = 2) -> dict[str, Any]:
        """Wait for a run of ``dag_id`` that is not in ``known`` (one an asset event created)."""

        def new() -> dict[str, Any] | None:
            return next((r for r in self.runs(dag_id) if r["dag_run_id"] not in known), None)

        return wait_until(new, timeout, f"a new run of {dag_id}", interval=poll)

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        return list(self.request("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances")["task_instances"])

    def task_instance(self, dag_id: str, run_id: str, task_id: str) -> dict[str, Any] | None:
        return next((ti for ti in self.task_instances(dag_id, run_id) if ti["task_id"] == task_id), None)

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int = 1) -> list[Any]:
        """A task's log as the UI reads it: its events (and the header naming where it was read from)."""
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}"
        body = self.request("GET", path, params={"full_content": "true"}, headers={"Accept": "application/json"})
        return list(body["content"])


class WebappClient:
    """The web app's JSON API; with ``reviewer`` (user, password) also its review queue."""

    def __init__(self, base_url: str, timeout: float = 60, reviewer: tuple[str, str] | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()
        self.reviewer = reviewer

    def predict(self, image: bytes, filename: str = "image.jpg") -> dict[str, Any]:
        response = self.session.post(
            f"{self.base_url}/api/v1/predict", files={"image": (filename, image)}, timeout=self.timeout
        )
        response.raise_for_status()
        return dict(response.json())

    def feedback(self, prediction_id: str, correct: bool, label: str) -> dict[str, Any]:
        body = {"prediction_id": prediction_id, "correct": correct, "label": label}
        response = self.session.post(f"{self.base_url}/api/v1/feedback", json=body, timeout=self.timeout)
        response.raise_for_status()
        return dict(response.json())

    def review_queue(self, limit: int = 200) -> dict[str, Any]:
        response = self.session.get(
            f"{self.base_url}/api/v1/review/queue", params={"limit": limit}, auth=self.reviewer, timeout=self.timeout
        )
        response.raise_for_status()
        return dict(response.json())

    def look_at(self, prediction_id: str) -> bytes:
        """The upload of a queued item, as the review page shows it (only what was shown may be accepted)."""
        response = self.session.get(
            f"{self.base_url}/review/image/{prediction_id}", auth=self.reviewer, timeout=self.timeout
        )
        response.raise_for_status()
        return response.content

    def review(self, decisions: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Post decisions ({prediction_id, action, label?}) as the reviewer, after looking at each item
        to be accepted or relabelled; the outcome of each."""
        for decision in decisions:
            if decision["action"] != "reject":
                self.look_at(decision["prediction_id"])
        response = self.session.post(
            f"{self.base_url}/api/v1/review/decisions",
            json={"decisions": decisions},
            auth=self.reviewer,
            timeout=self.timeout,
        )
        if response.status_code != 200:
            raise RuntimeError(f"review refused ({response.status_code}): {response.text[:500]}")
        return list(response.json()["results"])

    def served_version(self) -> str | None:
        response = self.session.get(f"{self.base_url}/api/v1/model", timeout=self.timeout)
        return str(response.json()["version"]) if response.status_code == 200 else None

    def wait_for_version(self, version: str, timeout: float, poll: float = 0.5) -> float:
        """Wait until the app serves ``version``; return the seconds it took."""
        start = time.monotonic()
        wait_until(
            lambda: self.served_version() == version, timeout, f"the web app serving version {version}", interval=poll
        )
        return time.monotonic() - start
