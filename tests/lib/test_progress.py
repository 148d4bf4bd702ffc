"""Progress in task logs (fsdl_lib._progress): a heartbeat while a silent call runs."""

from __future__ import annotations

import logging

import pytest

from fsdl_lib._progress import Heartbeat
from fsdl_tools.clients import wait_until


def test_heartbeat_logs_while_the_call_runs_and_says_how_it_ended(caplog):
    caplog.set_level(logging.INFO)
    log = logging.getLogger("beat-test")
    with Heartbeat("fitting", logger=log, interval=0.05, expected=100.0) as beat:
        assert _wait_for(caplog, "s so far, about", count=2)  # the call "runs" until two beats came
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0] == "fitting (about 100 s expected)"
    assert any("s so far, about" in line and "s left" in line for line in lines)
    assert lines[-1].startswith("fitting: done in ")
    assert beat.elapsed > 0

    caplog.clear()
    with pytest.raises(ValueError, match="no"), Heartbeat("diverging", logger=log, interval=60):
        raise ValueError("no")
    assert caplog.records[-1].getMessage().startswith("diverging: failed in ")


def _wait_for(caplog, text: str, count: int, timeout: float = 10.0) -> bool:
    return wait_until(
        lambda: sum(text in r.getMessage() for r in caplog.records) >= count,
        timeout,
        f"{count} x {text!r}",
        interval=0.01,
    )
