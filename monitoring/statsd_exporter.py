"""A StatsD to Prometheus bridge for Airflow's metrics.

Airflow sends its metrics as StatsD datagrams (``[metrics] statsd_on``); Prometheus scrapes. This
process listens for the datagrams on UDP and serves what they say at ``/metrics``:

* counters (``c``) become ``<name>_total``; gauges (``g``, ``+``/``-`` relative too) keep their
  name; timers (``ms``, ``h``, ``d``) become histograms in seconds, ``<name>_seconds``;
* tags become labels, in the InfluxDB form Airflow writes with ``statsd_influxdb_enabled``
  (``ti.finish,dag_id=x,task_id=y,state=failed:1|c``) or the DogStatsD form (``|#dag_id:x``);
* names are made Prometheus-safe: every character outside ``[a-zA-Z0-9_]`` becomes ``_``.

UDP takes datagrams from anyone who can reach the port, so nothing a datagram says can break the
exposition or exhaust memory:

* a line is refused (counted as ``statsd_exporter_lines_total{result="invalid"}``) unless its
  metric and label names, made safe, fit Prometheus's grammar (no empty name, no reserved ``__``
  label, no ``le`` on a timer, at most :data:`MAX_LABELS` labels, names and values of bounded
  length) and its series' names clash with no other family's (``x_total`` of a counter ``x`` and a
  gauge called ``x_total``, say) or the exporter's own;
* at most ``--max-series`` series are kept; past that, lines for new series are dropped
  (``statsd_exporter_series_dropped_total``); a series not updated for ``--series-ttl`` seconds is
  forgotten (``statsd_exporter_series_expired_total``); ``statsd_exporter_series`` is how many are kept;
* refusals are logged, at most one line per :data:`LOG_EVERY` seconds (a flood of them cannot
  flood the log).

It does what the same name's Go exporter does for these metrics, in one file on the standard
library and ``prometheus_client``, so that it runs wherever the platform's Python does. It listens
where Airflow's processes can reach it and no further (``127.0.0.1`` in the local modes; in compose
only the control-plane network, unpublished).

    python monitoring/statsd_exporter.py --statsd-host 127.0.0.1 --statsd-port 9125 --port 9102
"""

from __future__ import annotations

import argparse
import logging
import math
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import Metric

log = logging.getLogger("statsd_exporter")

TIMER_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, math.inf)
"""Seconds: from a scheduler loop to a first extraction over a full dataset."""
UNSAFE = re.compile(r"[^a-zA-Z0-9_]")
METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
"""Prometheus's grammar for metric and label names."""
KINDS = {"c": "counter", "g": "gauge", "ms": "timer", "h": "timer", "d": "timer"}
"""StatsD types, and what each becomes."""
MAX_DATAGRAM = 65535
MAX_LABELS = 16
MAX_NAME = 200
MAX_VALUE = 512
OWN_PREFIX = "statsd_exporter_"
LOG_EVERY = 10.0
DEFAULT_MAX_SERIES = 10_000
DEFAULT_SERIES_TTL = 86_400.0


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


def label_name(raw: str, line: str) -> str:
    name = metric_name(raw)
    if not LABEL_NAME.match(name) or name.startswith("__") or len(name) > MAX_NAME:
        raise InvalidLineError(f"bad label name {raw!r} in {line[:200]!r}")
    return name


def exposed_names(name: str, kind: str) -> tuple[str, ...]:
    """The sample names a family exposes (what must not clash with another family's)."""
    if kind == "counter":
        return (name, f"{name}_total", f"{name}_created")
    if kind == "gauge":
        return (name,)
    full = f"{name}_seconds"
    return (full, f"{full}_bucket", f"{full}_sum", f"{full}_count", f"{full}_created")


def parse_line(line: str) -> Sample:
    """One StatsD line: ``name[,k=v...]:value|type[|@rate][|#k:v,...]``."""
    body, _, tail = line.partition("|")
    head, sep, raw_value = body.rpartition(":")  # tag values before the value may hold ':' themselves
    fields = tail.split("|")
    kind = fields[0]
    if not sep or not head or not kind:
        raise InvalidLineError(f"not a StatsD line: {line[:200]!r}")
    name, *influx_tags = head.split(",")
    labels: dict[str, str] = {}
    for tag in influx_tags:
        key, sep, value = tag.partition("=")
        if not sep:
            raise InvalidLineError(f"bad tag {tag[:100]!r} in {line[:200]!r}")
        labels[label_name(key, line)] = value
    rate = 1.0
    for extra in fields[1:]:
        if extra.startswith("@"):
            try:
                rate = float(extra[1:])
            except ValueError:
                raise InvalidLineError(f"bad sample rate in {line[:200]!r}") from None
            if not 0 < rate <= 1:
                raise InvalidLineError(f"sample rate out of (0, 1] in {line[:200]!r}")
        elif extra.startswith("#"):
            for tag in filter(None, extra[1:].split(",")):
                key, _, value = tag.partition(":")
                labels[label_name(key, line)] = value
    if kind not in KINDS or not name:
        raise InvalidLineError(f"unsupported type {kind[:20]!r} in {line[:200]!r}")
    safe = metric_name(name)
    if not METRIC_NAME.match(safe) or len(safe) > MAX_NAME or safe.startswith(OWN_PREFIX):
        raise InvalidLineError(f"bad metric name {name[:100]!r}")
    if len(labels) > MAX_LABELS:
        raise InvalidLineError(f"{len(labels)} labels, more than {MAX_LABELS}, in {line[:200]!r}")
    if any(len(value) > MAX_VALUE for value in labels.values()):
        raise InvalidLineError(f"a label value longer than {MAX_VALUE} characters in {line[:200]!r}")
    if KINDS[kind] == "timer" and "le" in labels:
        raise InvalidLineError(f"a timer may not have a label 'le' (its histogram's) in {line[:200]!r}")
    relative = KINDS[kind] == "gauge" and raw_value[:1] in "+-"
    try:
        value = float(raw_value)
    except ValueError:
        raise InvalidLineError(f"bad value {raw_value[:50]!r} in {line[:200]!r}") from None
    if not math.isfinite(value):
        raise InvalidLineError(f"value is not finite in {line[:200]!r}")
    return Sample(safe, KINDS[kind], value, tuple(sorted(labels.items())), relative, rate)


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
    """What the datagrams said so far, within bounds; a Prometheus collector of it."""

    def __init__(self, max_series: int = DEFAULT_MAX_SERIES, series_ttl: float = DEFAULT_SERIES_TTL) -> None:
        self.max_series = max_series
        self.series_ttl = series_ttl
        self._lock = threading.Lock()
        self._kinds: dict[str, str] = {}
        self._exposed: dict[str, str] = {}  # sample name -> the family that exposes it
        self._values: dict[tuple[str, tuple[tuple[str, str], ...]], float | Histogram] = {}
        self._touched: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        self.lines = {"ok": 0, "invalid": 0}
        self.dropped = 0
        self.expired = 0
        self._last_log = 0.0
        self._unlogged = 0

    def _claim(self, name: str, kind: str) -> None:
        """Register family ``name`` of ``kind``, unless it clashes with one already kept."""
        known = self._kinds.get(name)
        if known is not None:
            if known != kind:
                raise InvalidLineError(f"{name} was a {known}; a {kind} of that name is ignored")
            return
        clash = next((self._exposed[n] for n in exposed_names(name, kind) if n in self._exposed), None)
        if clash is not None:
            raise InvalidLineError(f"a {kind} {name} would clash with the series of {clash}; ignored")
        self._kinds[name] = kind
        self._exposed.update(dict.fromkeys(exposed_names(name, kind), name))

    def apply(self, sample: Sample, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            key = (sample.name, sample.labels)
            if key not in self._values and len(self._values) >= self.max_series:
                self.dropped += 1
                raise InvalidLineError(f"already {self.max_series} series kept; {sample.name} dropped")
            self._claim(sample.name, sample.kind)
            if sample.kind == "counter":
                self._values[key] = self._values.get(key, 0.0) + sample.value / sample.rate  # type: ignore[operator]
            elif sample.kind == "gauge":
                previous = self._values.get(key, 0.0) if sample.relative else 0.0
                self._values[key] = previous + sample.value  # type: ignore[operator]
            else:
                histogram = self._values.setdefault(key, Histogram())
                histogram.observe(sample.value / 1000.0, 1.0 / sample.rate)  # type: ignore[union-attr]
            self._touched[key] = now

    def expire(self, now: float | None = None) -> int:
        """Forget series not updated for ``series_ttl`` seconds (and families left empty)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            old = [key for key, touched in self._touched.items() if now - touched > self.series_ttl]
            for key in old:
                del self._values[key], self._touched[key]
            alive = {name for name, _ in self._values}
            for name in [n for n in self._kinds if n not in alive]:
                for exposed in exposed_names(name, self._kinds.pop(name)):
                    self._exposed.pop(exposed, None)
            self.expired += len(old)
        return len(old)

    def _refused(self, exc: InvalidLineError) -> None:
        self.lines["invalid"] += 1
        now = time.monotonic()
        if now - self._last_log >= LOG_EVERY:
            more = f" ({self._unlogged} more refused since the last message)" if self._unlogged else ""
            log.warning("%s%s", exc, more)
            self._last_log, self._unlogged = now, 0
        else:
            self._unlogged += 1

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
                self._refused(exc)
            else:
                self.lines["ok"] += 1

    def collect(self) -> Iterator[Metric]:
        self.expire()
        with self._lock:
            items = sorted(self._values.items(), key=lambda kv: kv[0])
            kinds = dict(self._kinds)
        families: dict[str, Metric] = {}
        for (name, labels), value in items:
            kind = kinds[name]
            if kind == "counter":
                family = families.setdefault(name, Metric(name, f"StatsD counter {name}", "counter"))
                family.add_sample(f"{name}_total", dict(labels), value)  # type: ignore[arg-type]
            elif kind == "gauge":
                family = families.setdefault(name, Metric(name, f"StatsD gauge {name}", "gauge"))
                family.add_sample(name, dict(labels), value)  # type: ignore[arg-type]
            else:
                assert isinstance(value, Histogram)
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
        series = Metric("statsd_exporter_series", "Series kept now", "gauge")
        series.add_sample("statsd_exporter_series", {}, len(items))
        yield series
        limit = Metric("statsd_exporter_series_limit", "Most series kept (--max-series)", "gauge")
        limit.add_sample("statsd_exporter_series_limit", {}, self.max_series)
        yield limit
        dropped = Metric(
            "statsd_exporter_series_dropped", "Lines dropped: they would have made a series too many", "counter"
        )
        dropped.add_sample("statsd_exporter_series_dropped_total", {}, self.dropped)
        yield dropped
        expired = Metric(
            "statsd_exporter_series_expired", "Series forgotten after --series-ttl without an update", "counter"
        )
        expired.add_sample("statsd_exporter_series_expired_total", {}, self.expired)
        yield expired


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
    parser.add_argument("--max-series", type=int, default=DEFAULT_MAX_SERIES, help="most series kept")
    parser.add_argument(
        "--series-ttl", type=float, default=DEFAULT_SERIES_TTL, help="seconds a series is kept without an update"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    store = Store(max_series=args.max_series, series_ttl=args.series_ttl)
    registry = CollectorRegistry()
    registry.register(store)
    start_http_server(args.port, addr=args.host, registry=registry)
    sock = socket.socket(socket.AF_INET6 if ":" in args.statsd_host else socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((args.statsd_host, args.statsd_port))
    log.info(
        "receiving StatsD on udp://%s:%d, serving http://%s:%d/metrics (at most %d series, each kept %.0f s "
        "without an update)",
        args.statsd_host, args.statsd_port, args.host, args.port, args.max_series, args.series_ttl,
    )  # fmt: skip
    serve(store, sock)


if __name__ == "__main__":
    main()
