"""The StatsD exporter as a real process, fed by Airflow's own StatsD client."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import ROOT, free_port, stop_process_group, wait_for_http

EXPORTER = ROOT / "monitoring" / "statsd_exporter.py"


class Exporter:
    def __init__(self) -> None:
        self.statsd_port, self.port = free_port(), free_port()
        self.proc = subprocess.Popen(
            [sys.executable, str(EXPORTER), "--statsd-port", str(self.statsd_port), "--port", str(self.port)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        wait_for_http(f"http://127.0.0.1:{self.port}/metrics", 30, self.proc)

    def send(self, *lines: str | bytes) -> None:
        datagram = b"\n".join(line if isinstance(line, bytes) else line.encode() for line in lines)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.sendto(datagram, ("127.0.0.1", self.statsd_port))

    def samples(self, until: str | None = None) -> dict:
        deadline = time.monotonic() + 10
        while True:  # UDP: the datagrams arrive shortly after they are sent
            text = requests.get(f"http://127.0.0.1:{self.port}/metrics", timeout=5).text
            found = {
                (s.name, tuple(sorted(s.labels.items()))): s.value
                for family in text_string_to_metric_families(text)
                for s in family.samples
            }
            if until is None or any(name == until for name, _ in found) or time.monotonic() > deadline:
                return found
            time.sleep(0.1)


@pytest.fixture
def exporter() -> Iterator[Exporter]:
    exporter = Exporter()
    yield exporter
    stop_process_group(exporter.proc)


def test_airflow_metrics_become_labelled_prometheus_series(exporter, monkeypatch):
    # Airflow's own client, configured as the platform configures every Airflow process.
    from fsdl_lib.config import Settings
    from fsdl_lib.services import AirflowLayout, airflow_environment

    settings = Settings.from_env({"FSDL_STATSD_PORT": str(exporter.statsd_port)})
    env = airflow_environment(settings, "embedded", AirflowLayout.local(settings, ROOT))
    for name, value in env.items():
        if name.startswith("AIRFLOW__METRICS__"):
            monkeypatch.setenv(name, value)
    from airflow.observability.metrics.statsd_logger import get_statsd_logger

    stats = get_statsd_logger()
    tags = {"dag_id": "intel_scenes_parallel", "task_id": "train_candidate"}
    stats.incr("ti.finish", tags={**tags, "state": "success"})
    stats.incr("ti.finish", tags={**tags, "state": "success"})
    stats.incr("ti.finish", tags={**tags, "state": "failed"})
    stats.timing("dagrun.duration.failed", 12_500, tags={"dag_id": "wine_quality"})
    stats.gauge("executor.open_slots", 3)
    stats.gauge("executor.open_slots", -1, delta=True)
    stats.incr("scheduler_heartbeat")

    values = exporter.samples(until="airflow_scheduler_heartbeat_total")
    finish = ("airflow_ti_finish_total", tuple(sorted({**tags, "state": "success"}.items())))
    assert values[finish] == 2
    assert values[("airflow_ti_finish_total", tuple(sorted({**tags, "state": "failed"}.items())))] == 1
    failed = (("dag_id", "wine_quality"),)
    assert values[("airflow_dagrun_duration_failed_seconds_count", failed)] == 1
    assert values[("airflow_dagrun_duration_failed_seconds_sum", failed)] == pytest.approx(12.5)
    assert values[("airflow_dagrun_duration_failed_seconds_bucket", (*failed, ("le", "10.0")))] == 0
    assert values[("airflow_dagrun_duration_failed_seconds_bucket", (*failed, ("le", "30.0")))] == 1
    assert values[("airflow_executor_open_slots", ())] == 2
    assert values[("airflow_scheduler_heartbeat_total", ())] == 1
    assert values[("statsd_exporter_lines_total", (("result", "invalid"),))] == 0


@pytest.mark.parametrize(
    "garbage",
    [
        "no colon here",
        "name:1",  # no type
        "name:abc|c",  # no number
        "name:1|x",  # unknown type
        "name,broken:1|c",  # a tag without '='
        "name:1|c|@2",  # a sample rate over 1
        "name:nan|g",
        b"\xff\xfe:1|c",  # not UTF-8
    ],
)
def test_malformed_lines_are_counted_and_the_exporter_keeps_going(exporter, garbage):
    exporter.send(garbage, "fine:1|c")
    values = exporter.samples(until="fine_total")
    assert values[("fine_total", ())] == 1
    assert values[("statsd_exporter_lines_total", (("result", "invalid"),))] == 1
    assert exporter.proc.poll() is None


def test_sample_rates_dogstatsd_tags_and_a_type_clash(exporter):
    exporter.send("jobs:1|c|@0.5|#queue:default", "jobs:1|c|#queue:default", "jobs:7|g")
    values = exporter.samples(until="jobs_total")
    assert values[("jobs_total", (("queue", "default"),))] == 3  # 1 / 0.5 + 1
    assert ("jobs", ()) not in values  # a gauge of a counter's name is refused, not mixed in
    assert values[("statsd_exporter_lines_total", (("result", "invalid"),))] == 1
