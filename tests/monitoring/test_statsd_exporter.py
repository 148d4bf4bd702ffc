"""The StatsD exporter as a real process, fed by Airflow's own StatsD client."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from fsdl_tools.clients import wait_until
from tests.conftest import ROOT, free_port, stop_process_group, wait_for_http

EXPORTER = ROOT / "monitoring" / "statsd_exporter.py"


class Exporter:
    def __init__(self, options: list[str] | None = None) -> None:
        self.statsd_port, self.port = free_port(), free_port()
        self.proc = subprocess.Popen(
            [sys.executable, str(EXPORTER), "--statsd-port", str(self.statsd_port), "--port", str(self.port),
             *(options or [])],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        wait_for_http(f"http://127.0.0.1:{self.port}/metrics", 30, self.proc)

    def send(self, *lines: str | bytes) -> None:
        datagram = b"\n".join(line if isinstance(line, bytes) else line.encode() for line in lines)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.sendto(datagram, ("127.0.0.1", self.statsd_port))

    def samples(self) -> dict:
        text = requests.get(f"http://127.0.0.1:{self.port}/metrics", timeout=5).text
        return {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }

    def samples_when(self, ready: Callable[[dict], bool], what: str, timeout: float = 10) -> dict:
        """The samples once ``ready`` holds of them (UDP: datagrams arrive shortly after they are sent)."""
        last: dict = {}

        def check() -> dict | None:
            nonlocal last
            last = self.samples()
            return last if ready(last) else None

        return wait_until(check, timeout, what, interval=0.1, describe=lambda: str(sorted(last))[:2000])

    def samples_with(self, series: str) -> dict:
        return self.samples_when(lambda found: any(name == series for name, _ in found), f"{series} on /metrics")


@pytest.fixture
def exporter() -> Iterator[Exporter]:
    exporter = Exporter()
    yield exporter
    stop_process_group(exporter.proc)


def test_airflow_metrics_become_labelled_prometheus_series(exporter, monkeypatch):
    # Airflow's own client, configured as the platform configures every Airflow process.
    from fsdl_deploy.environment import AirflowLayout, airflow_environment
    from fsdl_lib.config import Settings

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

    values = exporter.samples_with("airflow_scheduler_heartbeat_total")
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
    values = exporter.samples_with("fine_total")
    assert values[("fine_total", ())] == 1
    assert values[("statsd_exporter_lines_total", (("result", "invalid"),))] == 1
    assert exporter.proc.poll() is None


def test_sample_rates_dogstatsd_tags_and_a_type_clash(exporter):
    exporter.send("jobs:1|c|@0.5|#queue:default", "jobs:1|c|#queue:default", "jobs:7|g")
    values = exporter.samples_with("jobs_total")
    assert values[("jobs_total", (("queue", "default"),))] == 3  # 1 / 0.5 + 1
    assert ("jobs", ()) not in values  # a gauge of a counter's name is refused, not mixed in
    assert values[("statsd_exporter_lines_total", (("result", "invalid"),))] == 1


# --- forged datagrams: the exposition stays parseable and bounded ----------------------------------


class Prometheus:
    """A real Prometheus scraping the exporter every second, with the platform's scrape limits."""

    def __init__(self, tmp: Path, target: str) -> None:
        import shutil

        import yaml

        from fsdl_deploy.prometheus import SCRAPE_LIMITS

        binary = shutil.which("prometheus")
        assert binary, "prometheus is missing: scripts/test-prerequisites.sh installs Debian's prometheus package"
        config = {
            "global": {"scrape_interval": "1s"},
            "scrape_configs": [{"job_name": "airflow", "static_configs": [{"targets": [target]}], **SCRAPE_LIMITS}],
        }
        (tmp / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.url = f"http://127.0.0.1:{free_port()}"
        self.proc = subprocess.Popen(
            [binary, "--config.file", str(tmp / "prometheus.yml"), "--storage.tsdb.path", str(tmp / "data"),
             "--web.listen-address", self.url.removeprefix("http://")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        wait_for_http(f"{self.url}/-/ready", 60, self.proc)

    def query(self, expression: str) -> list[dict]:
        response = requests.get(f"{self.url}/api/v1/query", params={"query": expression}, timeout=10)
        return list(response.json()["data"]["result"])

    def scraped_after(self, since: float) -> tuple[str, str]:
        """The health of the exporter's first scrape that began after ``since`` (a time.time())."""
        from datetime import datetime

        def first_scrape() -> tuple[str, str] | None:
            targets = requests.get(f"{self.url}/api/v1/targets", timeout=10).json()["data"]["activeTargets"]
            for target in targets:  # none until the first discovery
                scraped = datetime.fromisoformat(target["lastScrape"].replace("Z", "+00:00")).timestamp()
                if scraped > since:
                    return target["health"], target["lastError"]
            return None

        return wait_until(first_scrape, 30, "a scrape of the exporter", interval=0.2)


FORGED = [
    b"airflow.ti.finish,=x:1|c",  # a tag with an empty key: made the whole exposition unparsable before
    b"airflow.ti.finish,__name__=x:1|c",  # a reserved label
    b"airflow.x:1|c|#:v",  # DogStatsD form, empty key
    b"airflow.timer,le=5:100|ms",  # a timer's own label
    b"123:1|g",  # a name of digits only becomes _123: legal, kept
    b"statsd_exporter_lines:5|c",  # the exporter's own series
    b"clash:1|c",  # clash_total ...
    b"clash_total:1|g",  # ... and a gauge of that very name
    ("many," + ",".join(f"k{i}=v" for i in range(40)) + ":1|c").encode(),  # more labels than allowed
    b"long,k=" + b"v" * 5000 + b":1|c",  # a label value longer than allowed
    b"\xc3\x28:1|c",  # not UTF-8
]


def test_forged_datagrams_cannot_take_airflows_metrics_down(exporter, tmp_path):
    """Before: one datagram with an empty tag key made the exposition unparsable; Prometheus then saw
    up{job="airflow"} = 0 and lost every Airflow metric and alert until the exporter restarted."""
    prometheus = Prometheus(tmp_path, f"127.0.0.1:{exporter.port}")
    try:
        exporter.send("airflow.scheduler_heartbeat:1|c")
        exporter.samples_with("airflow_scheduler_heartbeat_total")
        since = time.time()
        for datagram in FORGED:
            exporter.send(datagram)
        exporter.send("airflow.scheduler_heartbeat:1|c")
        invalid = ("statsd_exporter_lines_total", (("result", "invalid"),))
        # The exporter reads its datagrams in order but not at once: wait until the last forged one counted.
        values = exporter.samples_when(
            lambda found: "_123" in {name for name, _ in found} and found.get(invalid) == len(FORGED) - 2,
            f"{len(FORGED) - 2} invalid lines counted",
        )
        assert ("clash_total", ()) in values  # the first of two clashing families is kept, the second refused
        health, error = prometheus.scraped_after(since + 1)
        assert (health, error) == ("up", "")
        wait_until(
            lambda: prometheus.query("airflow_scheduler_heartbeat_total == 2"),
            20,
            "both heartbeats counted in Prometheus",
            describe=lambda: str(prometheus.query("airflow_scheduler_heartbeat_total")),
        )
        assert prometheus.query('up{job="airflow"}')[0]["value"][1] == "1"
        # promtool, Prometheus's own parser, finds nothing wrong in the exposition either.
        text = requests.get(f"http://127.0.0.1:{exporter.port}/metrics", timeout=5).text
        checked = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
        assert "error" not in (checked.stdout + checked.stderr).lower(), checked.stdout + checked.stderr
    finally:
        stop_process_group(prometheus.proc)


def test_series_are_bounded_and_expire(tmp_path):
    exporter = Exporter(["--max-series", "50", "--series-ttl", "2"])
    try:
        forged = [f"forged_{i}:1|g".encode() for i in range(200)]
        for start in range(0, 200, 20):
            exporter.send(*forged[start : start + 20])
        values = exporter.samples_when(
            lambda found: (
                found.get(("statsd_exporter_lines_total", (("result", "ok"),)), 0)
                + found.get(("statsd_exporter_lines_total", (("result", "invalid"),)), 0)
                >= 200
            ),
            "all 200 lines read",
        )
        assert values[("statsd_exporter_series", ())] == 50
        assert values[("statsd_exporter_series_limit", ())] == 50
        assert values[("statsd_exporter_series_dropped_total", ())] == 150
        assert len([name for name, _ in values if name.startswith("forged_")]) == 50
        # Unrefreshed, they are forgotten, and that makes room for new series.
        values = exporter.samples_when(
            lambda found: found[("statsd_exporter_series_expired_total", ())] >= 50, "50 series expired", timeout=15
        )
        assert not [name for name, _ in values if name.startswith("forged_")]
        assert values[("statsd_exporter_series", ())] == 0
        exporter.send("new_after_expiry:1|g")
        assert exporter.samples_with("new_after_expiry")[("new_after_expiry", ())] == 1
    finally:
        stop_process_group(exporter.proc)
