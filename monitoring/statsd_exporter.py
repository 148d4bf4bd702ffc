"""A StatsD to Prometheus bridge for Airflow's metrics.

Airflow sends its metrics as StatsD datagrams (``[metrics] statsd_on``); Prometheus scrapes. This
process listens for the datagrams on UDP and serves what they say at ``/metrics``:

* counters (``c``) become ``<name>_total``; gauges (``g``, ``+``/``-`` relative too) keep their
  name; timers (``ms``, ``h``, ``d``) become histograms in seconds, ``<name>_seconds``;
* tags become labels, in the InfluxDB form Airflow writes with ``statsd_influxdb_enabled``
  (``ti.finish,dag_id=x,task_id=y,state=failed:1|c``) or the DogStatsD form (``|#dag_id:x``);
* names are made Prometheus-safe: every character outside ``[a-zA-Z0-9_]`` becomes ``_``.

It does what the same name's Go exporter does for these metrics, in one file on the standard
library and ``prometheus_client``, so that it runs wherever the platform's Python does. Malformed
lines are counted (``statsd_exporter_lines_total{result="invalid"}``) and logged, never fatal.

    python monitoring/statsd_exporter.py --statsd-host 127.0.0.1 --statsd-port 9125 --port 9102
"""

from __future__ import annotations

import argparse
import logging
import math
import re
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import Metric

log = logging.getLogger("statsd_exporter")

TIMER_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, math.inf)
"""Seconds: from a scheduler loop to a first extraction over a full dataset."""
UNSAFE = re.compile(r"[^a-zA-Z0-9_]")
KINDS = {"c": "counter", "g": "gauge", "ms": "timer", "h": "timer", "d": "timer"}
"""StatsD types, and what each becomes."""
MAX_DATAGRAM = 65535


class InvalidLineError(ValueError):
    pass


@dataclass(frozen=True)
class Sample:
    name: str
    kind: str  # counter | gauge | timer
    value: float
    labels: tuple[tuple[str, str], ...]
    relative: bool = False
    rate: float = 1.0


def metric_name(raw: str) -> str:
    name = UNSAFE.sub("_", raw)
    return f"_{name}" if name[:1].isdigit() else name


def parse_line(line: str) -> Sample:
    """One StatsD line: ``name[,k=v...]:value|type[|@rate][|#k:v,...]``."""
    body, _, tail = line.partition("|")
    head, sep, raw_value = body.rpartition(":")  # tag values before the value may hold ':' themselves
    fields = tail.split("|")
    kind = fields[0]
    if not sep or not head or not kind:
        raise InvalidLineError(f"not a StatsD line: {line!r}")
    name, *influx_tags = head.split(",")
    labels: dict[str, str] = {}
    for tag in influx_tags:
        key, sep, value = tag.partition("=")
        if not sep or not key:
            raise InvalidLineError(f"bad tag {tag!r} in {line!r}")
        labels[metric_name(key)] = value
    rate = 1.0
    for extra in fields[1:]:
        if extra.startswith("@"):
            try:
                rate = float(extra[1:])
            except ValueError:
                raise InvalidLineError(f"bad sample rate in {line!r}") from None
            if not 0 < rate <= 1:
                raise InvalidLineError(f"sample rate out of (0, 1] in {line!r}")
        elif extra.startswith("#"):
            for tag in filter(None, extra[1:].split(",")):
                key, _, value = tag.partition(":")
                labels[metric_name(key)] = value
    if kind not in KINDS or not name:
        raise InvalidLineError(f"unsupported type {kind!r} in {line!r}")
    relative = KINDS[kind] == "gauge" and raw_value[:1] in "+-"
    try:
        value = float(raw_value)
    except ValueError:
        raise InvalidLineError(f"bad value {raw_value!r} in {line!r}") from None
    if not math.isfinite(value):
        raise InvalidLineError(f"value is not finite in {line!r}")
    return Sample(metric_name(name), KINDS[kind], value, tuple(sorted(labels.items())), relative, rate)


@dataclass
class Histogram:
    buckets: list[float] = field(default_factory=lambda: [0.0] * len(TIMER_BUCKETS))
    total: float = 0.0
    count: float = 0.0

    def observe(self, seconds: float, weight: float) -> None:
        for i, bound in enumerate(TIMER_BUCKETS):
            if seconds <= bound:
                self.buckets[i] += weight
        self.total += seconds * weight
        self.count += weight


class Store:
    """What the datagrams said so far; a Prometheus collector of it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._kinds: dict[str, str] = {}
        self._values: dict[tuple[str, tuple[tuple[str, str], ...]], float | Histogram] = {}
        self.lines = {"ok": 0, "invalid": 0}

    def apply(self, sample: Sample) -> None:
        with self._lock:
            kind = self._kinds.setdefault(sample.name, sample.kind)
            if kind != sample.kind:
                raise InvalidLineError(f"{sample.name} was a {kind}; a {sample.kind} of that name is ignored")
            key = (sample.name, sample.labels)
            if kind == "counter":
                self._values[key] = self._values.get(key, 0.0) + sample.value / sample.rate
            elif kind == "gauge":
                self._values[key] = (self._values.get(key, 0.0) if sample.relative else 0.0) + sample.value
            else:
                histogram = self._values.setdefault(key, Histogram())
                histogram.observe(sample.value / 1000.0, 1.0 / sample.rate)

    def feed(self, datagram: bytes) -> None:
        for raw in datagram.splitlines():
            if not raw.strip():
                continue
            try:
                try:
                    line = raw.decode("utf-8").strip()
                except UnicodeDecodeError:
                    raise InvalidLineError(f"not UTF-8: {raw[:80]!r}") from None
                self.apply(parse_line(line))
            except InvalidLineError as exc:
                self.lines["invalid"] += 1
                log.warning("%s", exc)
            else:
                self.lines["ok"] += 1

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            items = sorted(self._values.items(), key=lambda kv: kv[0])
            kinds = dict(self._kinds)
        families: dict[str, Metric] = {}
        for (name, labels), value in items:
            kind = kinds[name]
            if kind == "counter":
                family = families.setdefault(name, Metric(name, f"StatsD counter {name}", "counter"))
                family.add_sample(f"{name}_total", dict(labels), value)
            elif kind == "gauge":
                family = families.setdefault(name, Metric(name, f"StatsD gauge {name}", "gauge"))
                family.add_sample(name, dict(labels), value)
            else:
                full = f"{name}_seconds"
                family = families.setdefault(full, Metric(full, f"StatsD timer {name}, in seconds", "histogram"))
                for bound, count in zip(TIMER_BUCKETS, value.buckets, strict=True):
                    le = "+Inf" if math.isinf(bound) else repr(float(bound))
                    family.add_sample(f"{full}_bucket", {**dict(labels), "le": le}, count)
                family.add_sample(f"{full}_sum", dict(labels), value.total)
                family.add_sample(f"{full}_count", dict(labels), value.count)
        yield from families.values()
        lines = Metric("statsd_exporter_lines", "StatsD lines received, by outcome", "counter")
        for result, count in self.lines.items():
            lines.add_sample("statsd_exporter_lines_total", {"result": result}, count)
        yield lines


def serve(store: Store, sock: socket.socket, stop: threading.Event | None = None) -> None:
    """Read datagrams from ``sock`` into ``store`` until ``stop`` is set (or forever)."""
    sock.settimeout(0.5)
    while stop is None or not stop.is_set():
        try:
            datagram = sock.recv(MAX_DATAGRAM)
        except TimeoutError:
            continue
        store.feed(datagram)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--statsd-host", default="127.0.0.1", help="address to receive StatsD datagrams on (UDP)")
    parser.add_argument("--statsd-port", type=int, default=9125)
    parser.add_argument("--host", default="127.0.0.1", help="address of the /metrics endpoint")
    parser.add_argument("--port", type=int, default=9102)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    store = Store()
    registry = CollectorRegistry()
    registry.register(store)
    start_http_server(args.port, addr=args.host, registry=registry)
    sock = socket.socket(socket.AF_INET6 if ":" in args.statsd_host else socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((args.statsd_host, args.statsd_port))
    log.info(
        "receiving StatsD on udp://%s:%d, serving http://%s:%d/metrics",
        args.statsd_host, args.statsd_port, args.host, args.port,
    )  # fmt: skip
    serve(store, sock)


if __name__ == "__main__":
    main()
