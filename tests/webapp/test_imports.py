"""The serving package's own imports: nothing of it imports torch or torchvision, even where they are
installed (a training venv), so the web app's image can do without them."""

from __future__ import annotations

import json
import subprocess
import sys

CHECK = """
import importlib, json, pkgutil, sys
import fsdl_webapp
names = [m.name for m in pkgutil.walk_packages(fsdl_webapp.__path__, "fsdl_webapp.")]
for name in names:
    if name != "fsdl_webapp.gunicorn_conf":  # it refuses torch for the whole process: checked on its own
        importlib.import_module(name)
print(json.dumps({"modules": len(names), "loaded": sorted(m for m in ("torch", "torchvision") if m in sys.modules)}))
"""


def test_importing_every_module_of_the_serving_package_leaves_torch_out():
    out = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=120, check=True)
    found = json.loads(out.stdout.strip().splitlines()[-1])
    assert found["modules"] > 20
    assert found["loaded"] == []
    # The check can fail: torch is importable here, and an import of it would show.
    probe = subprocess.run(
        [sys.executable, "-c", "import sys, torch; print('torch' in sys.modules)"], capture_output=True, text=True,
        timeout=120, check=True,
    )  # fmt: skip
    assert probe.stdout.strip() == "True"
