"""`make up`'s script, for real: Airflow (api-server, scheduler, dag-processor) and MLflow as processes."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from fsdl_tools.clients import wait_until
from fsdl_tools.launcher import LocalPlatform
from tests.conftest import ROOT, wait_for_http

pytestmark = pytest.mark.slow


class Platform(LocalPlatform):
    """`make up` in a workspace of its own, healthy when Airflow's every component says so."""

    def __init__(self, tmp: Path) -> None:
        super().__init__(tmp, settings={"TORCH_HOME": str(tmp / "torch")})
        self.tmp = tmp

    @property
    def proc(self) -> subprocess.Popen[bytes] | None:
        return self.procs.get("platform")

    @property
    def airflow_port(self) -> int:
        return self.ports["AIRFLOW_PORT"]

    @property
    def mlflow_port(self) -> int:
        return self.ports["MLFLOW_PORT"]

    def wait_healthy(self, timeout: float = 180) -> None:
        try:
            wait_for_http(f"{self.mlflow}/health", timeout, self.proc)
            wait_for_http(f"{self.airflow}/api/v2/monitor/health", timeout, self.proc)

            def healthy() -> bool:
                health = requests.get(f"{self.airflow}/api/v2/monitor/health", timeout=5).json()
                return all(health[c]["status"] == "healthy" for c in ("metadatabase", "scheduler", "dag_processor"))

            wait_until(healthy, timeout, "Airflow's every component healthy", interval=1)
        except Exception as exc:
            raise AssertionError(f"{exc}\n--- up.log ---\n{self.output()[-4000:]}") from exc

    def token(self, password: str | None = None) -> requests.Response:
        return requests.post(
            f"{self.airflow}/auth/token",
            json={"username": "admin", "password": password or self.logins["AIRFLOW_ADMIN_PASSWORD"]},
            timeout=10,
        )

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[Platform]:
    platform = Platform(tmp_path)
    yield platform
    platform.stop()


def group_is_gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


def dag_ids_in_folder() -> set[str]:
    return {path.stem for path in (ROOT / "dags").glob("*.py") if not path.name.startswith("_")}


def test_up_serves_airflow_and_mlflow_and_stops_on_ctrl_c(platform: Platform, browser) -> None:
    proc = platform.start()
    platform.wait_healthy()

    out = platform.output()
    assert f"Airflow UI   http://127.0.0.1:{platform.airflow_port}" in out
    # The logins were generated on this first start, shown once, and kept readable by the owner only.
    logins = platform.logins
    secrets_file = platform.tmp / "storage" / "airflow" / "secrets.env"
    assert secrets_file.stat().st_mode & 0o777 == 0o600
    for service, password in (("Airflow", logins["AIRFLOW_ADMIN_PASSWORD"]),
                              ("MLflow", logins["MLFLOW_AUTH_ADMIN_PASSWORD"])):  # fmt: skip
        assert len(password) >= 20
        assert f"{service:8s} admin / {password}" in out
    assert (platform.tmp / "storage" / "mlflow" / "basic_auth.db").stat().st_mode & 0o777 == 0o600
    assert "seeded 90 training and 30 test images" in out
    assert "using deterministic random weights (FSDL_OFFLINE_WEIGHTS=1)" in out
    assert len(list((platform.tmp / "data/raw/intel_scenes/train/sea").glob("*.jpg"))) == 15
    assert (platform.tmp / "data/raw/wine/winequality-red.csv").read_bytes() == (
        ROOT / "data/raw/wine/winequality-red.csv"
    ).read_bytes()

    assert platform.token("admin").status_code in (401, 403)  # no well-known default password
    token = platform.token()
    token.raise_for_status()
    headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
    assert requests.get(f"{platform.airflow}/api/v2/dags", timeout=10).status_code == 401

    def dags_loaded() -> bool:  # the dag-processor parses the folder shortly after start
        dags = requests.get(f"{platform.airflow}/api/v2/dags", headers=headers, timeout=10).json()
        errors = requests.get(f"{platform.airflow}/api/v2/importErrors", headers=headers, timeout=10).json()
        assert errors["total_entries"] == 0, errors
        return {d["dag_id"] for d in dags["dags"]} >= dag_ids_in_folder()

    wait_until(dags_loaded, 120, "every DAG of the folder loaded", interval=2)
    assert dag_ids_in_folder(), "the dags/ folder holds no DAG"

    # A person logs in to Airflow's UI in a real browser with the generated password, not the default.
    page = browser.new_page()
    page.goto(f"{platform.airflow}/")
    page.wait_for_url("**/auth/login**", timeout=60_000)
    for password, accepted in (("admin", False), (logins["AIRFLOW_ADMIN_PASSWORD"], True)):
        page.locator("input:not([type=password])").first.fill("admin")
        page.locator("input[type=password]").fill(password)
        # The login page posts the form to /auth/token: 201 with a token, or 401.
        with page.expect_response(
            lambda response: response.request.method == "POST" and "/auth/token" in response.url, timeout=60_000
        ) as login:
            page.locator("button[type=submit]").click()
        if accepted:
            assert login.value.status == 201
            page.wait_for_url(lambda url: "/auth/login" not in url, timeout=60_000)
            page.goto(f"{platform.airflow}/dags")
            page.get_by_text("intel_scenes_parallel").first.wait_for(timeout=60_000)
        else:
            assert login.value.status == 401, "the default password was accepted"
            page.get_by_text("Invalid credentials").wait_for(timeout=30_000)  # the page has taken the refusal in
            assert "/auth/login" in page.url
    page.close()
    # MLflow's UI: the browser's login prompt (basic auth); without it, 401.
    from playwright.sync_api import Error as BrowserError

    anonymous = browser.new_page()
    with pytest.raises(BrowserError, match="ERR_INVALID_AUTH_CREDENTIALS"):
        anonymous.goto(f"http://127.0.0.1:{platform.mlflow_port}/")
    anonymous.close()
    context = browser.new_context(
        http_credentials={"username": "admin", "password": logins["MLFLOW_AUTH_ADMIN_PASSWORD"]}
    )
    ui = context.new_page()
    assert ui.goto(f"http://127.0.0.1:{platform.mlflow_port}/").status == 200
    ui.wait_for_function("document.title.includes('MLflow')", timeout=60_000)
    context.close()

    webapp = platform.webapp
    wait_for_http(f"{webapp}/healthz", 120)
    ready = requests.get(f"{webapp}/readyz", timeout=10)
    assert ready.status_code == 503  # no production model yet
    assert "No production model yet" in requests.get(webapp, timeout=10).text

    mlflow = f"http://127.0.0.1:{platform.mlflow_port}"
    assert requests.get(f"{mlflow}/", timeout=10).status_code == 401
    mlflow_ui = requests.get(f"{mlflow}/", auth=("admin", logins["MLFLOW_AUTH_ADMIN_PASSWORD"]), timeout=10)
    assert mlflow_ui.status_code == 200
    assert "MLflow" in mlflow_ui.text

    # A second `make up` while the first runs refuses clearly instead of half-starting.
    second = subprocess.run(
        [str(ROOT / "scripts" / "up.sh")], env=platform.env, capture_output=True, text=True, timeout=120
    )
    assert second.returncode == 1
    assert "already running" in second.stderr
    assert "make down" in second.stderr

    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C sends
    assert proc.wait(timeout=60) == 128 + signal.SIGINT  # the shell convention for "ended by SIGINT"
    wait_until(lambda: group_is_gone(proc.pid), 30, "every process of the platform gone after Ctrl-C")
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{platform.airflow}/api/v2/monitor/health", timeout=5)

    # Safe to run again: state is reused, nothing is seeded twice, the logins stay and are not shown.
    platform.log.write_text("")
    platform.start()
    platform.wait_healthy()
    again = platform.output()
    assert "Scene dataset present, not seeding" in again
    assert "Generated logins" not in again
    assert logins["AIRFLOW_ADMIN_PASSWORD"] not in again
    assert platform.logins == logins
    platform.token().raise_for_status()


def test_a_chosen_password_with_quotes_and_dollars_reaches_airflow_intact(tmp_path: Path) -> None:
    """Values are written into JSON and shell by code that escapes them, never pasted into templates."""
    import json

    platform = Platform(tmp_path)
    password = "a \"quoted\" pa$$word with \\ back\\slash, {braces} and 'apostrophes'"
    env = {**platform.env, "AIRFLOW_ADMIN_PASSWORD": password}
    subprocess.run([str(ROOT / "scripts" / "up.sh"), "--prepare-only"], env=env, check=True, timeout=300,
                   capture_output=True)  # fmt: skip
    written = tmp_path / "storage" / "airflow" / "passwords.json"
    assert json.loads(written.read_text()) == {"admin": password}
    assert written.stat().st_mode & 0o777 == 0o600
    # The shell environment the processes get holds it unchanged too.
    probe = subprocess.run(
        ["bash", "-c", f". {ROOT / 'scripts' / 'local-env.sh'} && printf %s \"$AIRFLOW_ADMIN_PASSWORD\""],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert probe.stdout == password
