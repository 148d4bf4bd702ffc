"""The launcher's helpers (fsdl_tools.launcher): Procfiles, and stopping a whole process group."""

from __future__ import annotations

import os
import subprocess
import sys

from fsdl_tools.clients import wait_until
from fsdl_tools.launcher import procfile, stop_process_group
from fsdl_tools.repo import ROOT


def test_a_procfile_maps_each_role_to_its_command(tmp_path):
    path = tmp_path / "Procfile"
    path.write_text("# the roles\n\nweb: gunicorn -b 0.0.0.0:8000 app:app\nworker:  celery worker -Q a:b\n")
    assert procfile(path) == {"web": "gunicorn -b 0.0.0.0:8000 app:app", "worker": "celery worker -Q a:b"}
    assert {"mlflow", "webapp"} <= set(procfile(ROOT / "Procfile"))


def test_stopping_a_group_ends_its_children_even_one_that_ignores_sigterm(tmp_path):
    ignoring = tmp_path / "ignoring-sigterm"  # the child creates it once it ignores SIGTERM
    script = (
        "import signal, subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import pathlib, signal, sys, time; "
        "signal.signal(signal.SIGTERM, signal.SIG_IGN); pathlib.Path(sys.argv[1]).touch(); time.sleep(600)', "
        "sys.argv[1]])\n"
        "time.sleep(600)\n"
    )
    leader = subprocess.Popen([sys.executable, "-c", script, str(ignoring)], process_group=0)
    try:
        group = leader.pid
        wait_until(ignoring.exists, 20, "the child ignoring SIGTERM")
        stop_process_group(leader, timeout=2)
        assert leader.returncode == -15
        assert members(group) == []
    finally:
        if leader.poll() is None:
            leader.kill()


def members(group: int) -> list[int]:
    """The processes of process group ``group``."""
    found = []
    for pid in map(int, filter(str.isdigit, os.listdir("/proc"))):
        try:
            if os.getpgid(pid) == group:
                found.append(pid)
        except ProcessLookupError:
            pass
    return found
