"""The processes of a local platform: started under one supervisor, found again, stopped together.

Every process of a local start (``make up``, ``make up-distributed``, ``make demo``, the tests'
platforms) carries ``FSDL_INSTANCE=<its storage folder>`` in its environment
(``scripts/local-env.sh`` exports it), whatever process group or session it runs in: honcho gives
each service a session of its own, and Airflow's and gunicorn's workers fork further. That marker
is how a platform is found and stopped, even after its supervisor is gone:

* ``supervise``: what ``scripts/up.sh`` ends with. It runs honcho in a process group of its own and,
  on SIGINT, SIGTERM or SIGHUP (a closed terminal), asks it to stop (SIGTERM: each service stops
  cleanly), then ends whatever still carries the marker. It does the same when honcho ends by itself.
* ``down`` (``make down``): stops the platforms started from this checkout (their storage folder is
  inside it), and only those.
* ``status`` (``make status``): what runs, where.

Linux only: it reads ``/proc``, as the platform's local modes are for Linux machines.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from fsdl_tools.repo import ROOT

MARKER = "FSDL_INSTANCE"
"""The environment variable every process of a local platform carries: its storage folder."""
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
GRACE_SECONDS = 30.0
"""How long the services get to stop cleanly (honcho itself gives them 10 s) before SIGKILL."""
URL_VARIABLES = {
    "Airflow": "AIRFLOW_PORT", "MLflow": "MLFLOW_PORT", "Web app": "WEBAPP_PORT", "Flower": "FLOWER_PORT",
    "Prometheus": "PROMETHEUS_PORT",
}  # fmt: skip


@dataclass(frozen=True)
class Proc:
    pid: int
    command: str
    environment: dict[str, str] = field(repr=False)


def _read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:  # gone meanwhile, or another user's
        return None


def alive(pid: int) -> bool:
    """Running (a zombie, ended and waiting for its parent to reap it, is not)."""
    stat = _read(f"/proc/{pid}/stat")
    if stat is None:
        return False
    return stat.rsplit(b")", 1)[-1].split()[0] not in (b"Z", b"X")


def ancestors(pid: int | None = None) -> set[int]:
    """``pid`` (this process by default) and every process it descends from."""
    chain, pid = set(), os.getpid() if pid is None else pid
    while pid > 1 and pid not in chain:
        chain.add(pid)
        stat = _read(f"/proc/{pid}/stat")
        if stat is None:
            break
        pid = int(stat.rsplit(b")", 1)[-1].split()[1])
    return chain


def processes(instances: Iterable[Path] | None = None, *, under: Path | None = None) -> dict[Path, list[Proc]]:
    """The live processes carrying the marker, by instance (storage folder): of the given
    ``instances``, or of every instance whose folder is inside ``under``, or of all; never the
    caller or its ancestors."""
    wanted = {Path(p).resolve() for p in instances} if instances is not None else None
    root = under.resolve() if under is not None else None
    found: dict[Path, list[Proc]] = {}
    mine = ancestors()  # a script of the platform asking (up.sh) is not what it asks about
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) in mine:
            continue
        raw = _read(f"/proc/{entry}/environ")
        if not raw or f"{MARKER}=".encode() not in raw:
            continue
        environment = dict(item.split("=", 1) for item in raw.decode(errors="replace").split("\0") if "=" in item)
        instance = Path(environment[MARKER])
        if wanted is not None and instance not in wanted:
            continue
        if root is not None and not instance.is_relative_to(root):
            continue
        if not alive(int(entry)):
            continue
        cmdline = (_read(f"/proc/{entry}/cmdline") or b"").replace(b"\0", b" ").decode(errors="replace").strip()
        found.setdefault(instance, []).append(Proc(int(entry), cmdline, environment))
    return found


def _signal(pids: Iterable[int], sig: signal.Signals) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def end(instance: Path, *, grace: float = GRACE_SECONDS, say=print) -> int:
    """SIGTERM every process of ``instance``, wait up to ``grace`` seconds, then SIGKILL what is
    left; return how many processes there were."""
    procs = processes([instance]).get(instance.resolve(), [])
    if not procs:
        return 0
    _signal((p.pid for p in procs), signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        left = processes([instance]).get(instance.resolve(), [])
        if not left:
            return len(procs)
        _signal((p.pid for p in left if p.pid not in {q.pid for q in procs}), signal.SIGTERM)  # forked since
        time.sleep(0.25)
    left = processes([instance]).get(instance.resolve(), [])
    if left:
        say(f"{len(left)} processes did not stop within {grace:.0f} s; killing them: {[p.pid for p in left]}")
        _signal((p.pid for p in left), signal.SIGKILL)
        deadline = time.monotonic() + 10
        while processes([instance]).get(instance.resolve()) and time.monotonic() < deadline:
            time.sleep(0.1)
    return len(procs)


def _say(message: str) -> None:
    """Print, where a terminal may be gone (after SIGHUP writes fail; the stop goes on)."""
    with contextlib.suppress(OSError):
        print(f"==> {message}", flush=True)


def supervise(command: list[str], instance: Path) -> int:
    """Run ``command`` (honcho) until it ends or a stop signal comes; then end everything of
    ``instance``. Returns the exit status for the caller."""
    received: list[int] = []

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        received.append(signum)

    for sig in STOP_SIGNALS:
        signal.signal(sig, on_signal)
    # Its own process group: a terminal's Ctrl-C or hang-up reaches this process alone, which then
    # stops the services in order rather than everything dying at once.
    child = subprocess.Popen(command, process_group=0)
    while child.poll() is None and not received:
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(timeout=0.5)
    if received:
        _say(f"{signal.Signals(received[0]).name}: stopping the platform")
        for sig in STOP_SIGNALS:
            signal.signal(sig, signal.SIG_IGN)  # a second Ctrl-C does not cut the stop short
        try:
            child.send_signal(signal.SIGTERM)
            child.wait(timeout=GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            pass
    ended = end(instance, say=_say)
    if ended:
        _say(f"ended {ended} processes the services left behind")
    child.wait()
    _say("the platform has stopped")
    return 128 + received[0] if received else (child.returncode or 0)


def describe(instance: Path, procs: list[Proc]) -> str:
    environment = min(procs, key=lambda p: p.pid).environment
    lines = [f"{instance} ({environment.get('FSDL_MODE', 'embedded')} mode): {len(procs)} processes"]
    for name, variable in URL_VARIABLES.items():
        if variable in environment and (name != "Flower" or environment.get("FSDL_MODE") == "distributed"):
            lines.append(f"  {name:11s} http://127.0.0.1:{environment[variable]}")
    for proc in sorted(procs, key=lambda p: p.pid):
        lines.append(f"  {proc.pid:>8d}  {proc.command[:110]}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m fsdl_tools.processes", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="action", required=True)
    run = sub.add_parser("supervise", help="run a command as the platform's supervisor (scripts/up.sh)")
    run.add_argument("command", nargs=argparse.REMAINDER)
    for name, text in (("down", "stop the platforms of this checkout"), ("status", "what runs from this checkout")):
        sub.add_parser(name, help=text).add_argument("--root", type=Path, default=ROOT, help="the checkout")
    args = parser.parse_args(argv)
    if args.action == "supervise":
        instance = os.environ.get(MARKER)
        if not instance or not args.command:
            parser.error(f"supervise needs {MARKER} in the environment and a command after --")
        command = args.command[1:] if args.command[0] == "--" else args.command
        sys.exit(supervise(command, Path(instance)))
    found = processes(under=args.root)
    if not found:
        print(f"No platform of {args.root.resolve()} is running.")
        return
    for instance, procs in sorted(found.items()):
        print(describe(instance, procs))
        if args.action == "down":
            end(instance)
            print(f"Stopped the platform in {instance}.")


if __name__ == "__main__":
    main()
