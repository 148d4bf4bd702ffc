"""Inference off gevent's event loop (fsdl_webapp.offload)."""

from __future__ import annotations

GEVENT_PROBE = """
from gevent import monkey
monkey.patch_all()
import json, threading
import gevent
from fsdl_webapp.offload import InferenceRunner

real_sleep = monkey.get_original("time", "sleep")
ticks = []

def ticker():
    while True:
        ticks.append(1)
        gevent.sleep(0.01)

def infer():  # stands in for a model: holds its OS thread, as torch does while it computes
    real_sleep(0.5)
    return threading.get_native_id()

runner = InferenceRunner()
background = gevent.spawn(ticker)
gevent.sleep(0)
worker_thread = runner.run(infer)
during = len(ticks)
print(json.dumps({"offloaded": runner.offloaded, "loop": threading.get_native_id(),
                  "worker": worker_thread, "ticks": during}))
"""


def test_under_gevent_inference_runs_off_the_event_loop():
    """In a gevent worker the model runs on its own OS thread, so the loop keeps serving other
    clients (here: a greenlet that ticks) for the whole inference."""
    import json
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", GEVENT_PROBE], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    found = json.loads(out.stdout.strip().splitlines()[-1])
    assert found["offloaded"] is True
    assert found["worker"] != found["loop"]
    assert found["ticks"] >= 10, f"the event loop stood still during the inference ({found['ticks']} ticks)"


def test_without_gevent_inference_runs_in_the_calling_thread():
    import threading

    from fsdl_webapp.offload import InferenceRunner

    runner = InferenceRunner()
    assert runner.offloaded is False
    assert runner.run(threading.get_native_id) == threading.get_native_id()
