"""Finding and stopping a platform's processes by their instance marker (fsdl_tools.processes), on
real processes: children in sessions of their own, and one that ignores SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from fsdl_tools.clients import wait_until
from fsdl_tools.processes import MARKER, end, processes

SLEEPER = [sys.executable, "-c", "import time; time.sleep(600)"]
STUBBORN = (
    "import signal, sys, time, pathlib; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    "pathlib.Path(sys.argv[1]).touch(); time.sleep(600)"
)
"""A process that ignores SIGTERM, and says so by creating the file it is given."""


def start(command: list[str], instance: Path) -> subprocess.Popen[bytes]:
    """A process carrying ``instance``'s marker, in a session of its own (as honcho starts services)."""
    return subprocess.Popen(command, env={**os.environ, MARKER: str(instance)}, start_new_session=True)


@pytest.fixture
def instances(tmp_path):
    started: list[subprocess.Popen[bytes]] = []
    yield tmp_path, started
    for proc in started:
        proc.kill()
        proc.wait()


def pids(instance: Path) -> set[int]:
    return {p.pid for p in processes([instance]).get(instance.resolve(), [])}


def test_processes_are_found_by_their_instance_and_folder(instances):
    tmp_path, started = instances
    mine, other = tmp_path / "checkout" / "storage", tmp_path / "elsewhere" / "storage"
    started += [start(SLEEPER, mine), start(SLEEPER, mine), start(SLEEPER, other)]
    wait_until(lambda: len(pids(mine)) == 2 and len(pids(other)) == 1, 10, "the processes started")
    assert pids(mine) == {started[0].pid, started[1].pid}
    assert set(processes(under=tmp_path / "checkout")) == {mine.resolve()}
    assert {p.command for p in processes([other])[other.resolve()]} == {" ".join(SLEEPER)}
    assert os.getpid() not in {p.pid for procs in processes().values() for p in procs}


def test_end_stops_an_instance_and_kills_what_ignores_sigterm_leaving_others(instances):
    tmp_path, started = instances
    mine, other = tmp_path / "mine", tmp_path / "other"
    ignoring = tmp_path / "ignoring-sigterm"
    started += [start(SLEEPER, mine), start([sys.executable, "-c", STUBBORN, str(ignoring)], mine)]
    started.append(start(SLEEPER, other))
    wait_until(lambda: len(pids(mine)) == 2 and pids(other) and ignoring.exists(), 10, "the processes started")
    said: list[str] = []
    assert end(mine, grace=1, say=said.append) == 2
    assert pids(mine) == set()
    assert [started[0].wait(5), started[1].wait(5)] == [-signal.SIGTERM, -signal.SIGKILL]
    assert "did not stop within 1 s" in said[0]
    assert pids(other) == {started[2].pid}  # another instance runs on
    assert end(mine) == 0


def test_the_supervisor_stops_everything_of_its_instance_on_a_signal(tmp_path):
    instance = tmp_path / "storage"
    # A service that leaves a process of its own session behind, as honcho's services do.
    sleep = f"{sys.executable} -c 'import time; time.sleep(600)'"
    script = f"{sleep} & setsid {sleep} & wait"
    supervisor = subprocess.Popen(
        [sys.executable, "-m", "fsdl_tools.processes", "supervise", "--", "sh", "-c", script],
        env={**os.environ, MARKER: str(instance)}, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        wait_until(lambda: len(pids(instance)) >= 4, 20, "the services started", describe=lambda: str(pids(instance)))
        supervisor.send_signal(signal.SIGTERM)
        out, _ = supervisor.communicate(timeout=60)
    finally:
        supervisor.kill()
    assert supervisor.returncode == 128 + signal.SIGTERM
    assert "SIGTERM: stopping the platform" in out
    assert "the platform has stopped" in out
    assert pids(instance) == set()


def test_status_and_down_say_when_nothing_runs(tmp_path):
    for action in ("status", "down"):
        result = subprocess.run(
            [sys.executable, "-m", "fsdl_tools.processes", action, "--root", str(tmp_path)],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        assert result.stdout.strip() == f"No platform of {tmp_path.resolve()} is running."
