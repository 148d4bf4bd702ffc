"""The polling helper every test and client waits with (fsdl_tools.clients.wait_until), and the
logins file reader."""

from __future__ import annotations

import time

import pytest

from fsdl_tools.clients import local_logins, wait_until


def test_returns_the_first_true_result_as_soon_as_there_is_one():
    calls = iter([None, 0, "", {"state": "success"}, {"state": "later"}])
    started = time.monotonic()
    assert wait_until(lambda: next(calls), 10, "the run", interval=0.01) == {"state": "success"}
    assert time.monotonic() - started < 1


def test_says_what_did_not_happen_and_why_after_the_timeout():
    started = time.monotonic()
    with pytest.raises(TimeoutError, match=r"the worker starting did not happen within 0 s: still queued"):
        wait_until(lambda: False, 0.3, "the worker starting", interval=0.05, describe=lambda: "still queued")
    assert 0.3 <= time.monotonic() - started < 2


def test_an_error_in_the_condition_is_not_swallowed():
    def broken() -> bool:
        raise ConnectionError("refused")

    with pytest.raises(ConnectionError, match="refused"):
        wait_until(broken, 10, "an answer")


def test_local_logins_reads_the_generated_file_and_names_a_missing_one(tmp_path):
    with pytest.raises(FileNotFoundError, match="no logins yet"):
        local_logins(tmp_path)
    (tmp_path / "airflow").mkdir()
    (tmp_path / "airflow" / "secrets.env").write_text("# made by make secrets\nAIRFLOW_ADMIN_PASSWORD=a=b\n\n")
    assert local_logins(tmp_path) == {"AIRFLOW_ADMIN_PASSWORD": "a=b"}
