"""The platform stops with its command.

`make up`, `make up-distributed` and `make demo` stop everything they started on SIGINT (Ctrl-C,
which a terminal sends to the whole process group; for `make up`, in test_embedded_up.py), SIGTERM
(to the make process alone, as `kill` sends it) and SIGHUP (a closed terminal: to the process group).
`make down` stops a platform of this checkout left running when its supervisor died, and only the
platforms of that checkout; `make status` lists them.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from fsdl_tools.clients import wait_for_http, wait_until
from fsdl_tools.launcher import LocalPlatform
from fsdl_tools.processes import MARKER, processes
from tests.conftest import ROOT

pytestmark = pytest.mark.slow


class MadePlatform(LocalPlatform):
    """A local platform started the way its user starts it: `make <target>`, in a session of its own
    (so that signals to the process group reach make and what it runs, as from a terminal)."""

    def launch(self, target: str, *make_args: str, background: bool = False) -> subprocess.Popen[bytes]:
        """``background``: as a shell script starts a job with ``&``, with SIGINT ignored (inherited)."""

        def ignore_sigint() -> None:
            signal.signal(signal.SIGINT, signal.SIG_IGN)

        with self.log.open("ab") as log:
            self.procs["make"] = subprocess.Popen(
                ["make", "--no-print-directory", "-s", target, *make_args], cwd=ROOT, env=self.env,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                preexec_fn=ignore_sigint if background else None,
            )  # fmt: skip
        return self.procs["make"]

    def running(self) -> list[int]:
        return [p.pid for p in processes([self.instance]).get(self.instance, [])]

    def listening(self) -> list[str]:
        """The platform's ports that something still accepts connections on."""
        busy = []
        for name, port in self.ports.items():
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    busy.append(name)
        return busy

    def assert_all_stopped(self, make: subprocess.Popen[bytes]) -> None:
        make.wait(timeout=240)  # a loaded machine stops Airflow slowly; what matters is that all of it stops
        wait_until(lambda: not self.running(), 60, "every process of the platform ending",
                   describe=lambda: f"still running: {self.running()}\n{self.logs()}")  # fmt: skip
        assert self.listening() == [], self.logs()


@pytest.fixture
def made(tmp_path: Path) -> Iterator[MadePlatform]:
    platform = MadePlatform(tmp_path, settings={"TORCH_HOME": str(tmp_path / "torch")})
    yield platform
    platform.stop()


def send(proc: subprocess.Popen[bytes], sig: signal.Signals, *, group: bool) -> None:
    if group:
        os.killpg(proc.pid, sig)  # a terminal's Ctrl-C or hang-up reaches the whole foreground group
    else:
        proc.send_signal(sig)  # `kill PID`: make alone, which passes SIGTERM on to what it runs


@pytest.mark.parametrize(
    ("target", "sig", "group"),
    [
        ("up", signal.SIGHUP, True),
        ("up", signal.SIGTERM, False),
        ("up-distributed", signal.SIGINT, True),
        ("up-distributed", signal.SIGHUP, True),
        ("up-distributed", signal.SIGTERM, False),
    ],
    ids=["up-sighup", "up-sigterm", "distributed-sigint", "distributed-sighup", "distributed-sigterm"],
)
def test_make_up_stops_everything_it_started(tmp_path: Path, target: str, sig: signal.Signals, group: bool) -> None:
    mode = "distributed" if target == "up-distributed" else "embedded"
    platform = MadePlatform(tmp_path, mode=mode, settings={"TORCH_HOME": str(tmp_path / "torch")})
    try:
        make = platform.launch(target)
        platform.wait_healthy()
        started = platform.running()
        assert len(started) >= 6, started  # honcho, the services and their workers
        assert {"AIRFLOW_PORT", "MLFLOW_PORT", "WEBAPP_PORT"} <= set(platform.listening())

        send(make, sig, group=group)
        platform.assert_all_stopped(make)
        assert f"{sig.name}: stopping the platform" in platform.log.read_text()
    finally:
        platform.stop()


@pytest.mark.parametrize(
    ("sig", "group", "background"),
    [(signal.SIGINT, True, True), (signal.SIGTERM, False, False), (signal.SIGHUP, True, False)],
    ids=["sigint-started-in-the-background", "sigterm", "sighup"],
)
def test_make_demo_stops_everything_it_started(
    made: MadePlatform, sig: signal.Signals, group: bool, background: bool
) -> None:
    """SIGINT reaches a demo started in the background too, where it began with SIGINT ignored."""
    workspace = made.workspace / "demo"
    make = made.launch("demo", f"DEMO_ARGS=--workspace {workspace} --image-size 64", background=background)
    instance = (workspace / "storage").resolve()

    def webapp_port() -> str | None:
        for proc in processes([instance]).get(instance, []):
            if "gunicorn" in proc.command:
                return proc.environment["WEBAPP_PORT"]
        return None

    port = wait_until(webapp_port, 240, "the demo's web app starting", describe=made.logs)
    wait_for_http(f"http://127.0.0.1:{port}/healthz", 120, make)  # the demo is under way

    send(make, sig, group=group)
    make.wait(timeout=240)
    wait_until(lambda: not processes([instance]), 60, "every process of the demo ending",
               describe=lambda: str(processes([instance])))  # fmt: skip
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", int(port))) != 0


def fsdl_processes(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fsdl_tools.processes", *args], capture_output=True, text=True,
                          timeout=120, check=True)  # fmt: skip


def test_down_stops_a_platform_left_running_and_only_that_checkouts(tmp_path: Path) -> None:
    left = MadePlatform(tmp_path / "checkout" / "left", settings={"TORCH_HOME": str(tmp_path / "torch")})
    other = MadePlatform(tmp_path / "elsewhere", settings={"TORCH_HOME": str(tmp_path / "torch")})
    try:
        make = left.launch("up")
        other.launch("up")
        left.wait_healthy()
        other.wait_healthy()
        # The supervisor dies without a word (SIGKILL): the services go on, holding their ports.
        supervisor = next(p for p in processes([left.instance])[left.instance] if "supervise" in p.command)
        os.kill(supervisor.pid, signal.SIGKILL)
        make.wait(timeout=60)
        assert {"AIRFLOW_PORT", "MLFLOW_PORT", "WEBAPP_PORT"} <= set(left.listening())

        status = fsdl_processes("status", "--root", str(tmp_path / "checkout")).stdout
        assert str(left.instance) in status
        assert f"Web app     http://127.0.0.1:{left.ports['WEBAPP_PORT']}" in status
        assert str(other.instance) not in status

        down = fsdl_processes("down", "--root", str(tmp_path / "checkout")).stdout
        assert f"Stopped the platform in {left.instance}" in down
        assert left.running() == []
        assert left.listening() == []
        # The platform of another checkout is untouched.
        assert other.running()
        wait_for_http(f"{other.webapp}/healthz", 10)
        assert "No platform" in fsdl_processes("status", "--root", str(tmp_path / "checkout")).stdout
        # Every process of the other one carries its own storage folder, nothing else.
        assert all(p.environment[MARKER] == str(other.instance) for p in processes([other.instance])[other.instance])
    finally:
        left.stop()
        other.stop()
