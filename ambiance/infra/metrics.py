"""Metrics in Prometheus' text exposition format (0.0.4): a tiny hand-written registry.

Counters, gauges and histograms with fixed buckets, each with fixed label names; one lock
for the whole registry, since Hue requests are counted on the event loop and values may
be set from paho's thread. `Metrics` holds the service's own metrics; the core owns one
(`Ambiance.metrics`) and hands it to the rooms, bridges, connections and health flags.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator, Sequence

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
COMMAND_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

Labels = tuple[str, ...]


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(names: Sequence[str], values: Sequence[str]) -> str:
    if not names:
        return ""
    pairs = ",".join(f'{n}="{_escape(v)}"' for n, v in zip(names, values, strict=True))
    return "{" + pairs + "}"


class _Metric:
    kind = "untyped"

    def __init__(self, lock: threading.Lock, name: str, help: str, labels: Sequence[str]) -> None:
        self._lock = lock
        self.name = name
        self.help = help
        self.labelnames = tuple(labels)

    def _key(self, labels: dict[str, str]) -> Labels:
        if set(labels) != set(self.labelnames):
            raise ValueError(f"{self.name} takes labels {self.labelnames}, not {tuple(labels)}")
        return tuple(str(labels[n]) for n in self.labelnames)

    def header(self) -> Iterator[str]:
        help = self.help.replace("\\", "\\\\").replace("\n", "\\n")
        yield f"# HELP {self.name} {help}"
        yield f"# TYPE {self.name} {self.kind}"

    def samples(self) -> Iterator[str]:  # called under the lock
        raise NotImplementedError


class _Values(_Metric):
    def __init__(self, lock: threading.Lock, name: str, help: str, labels: Sequence[str]) -> None:
        super().__init__(lock, name, help, labels)
        self._values: dict[Labels, float] = {}

    def value(self, **labels: str) -> float:
        with self._lock:
            return self._values.get(self._key(labels), 0.0)

    def samples(self) -> Iterator[str]:
        for key, value in sorted(self._values.items()):
            yield f"{self.name}{_labels(self.labelnames, key)} {_number(value)}"


class Counter(_Values):
    kind = "counter"

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        if amount < 0:
            raise ValueError("a counter only goes up")
        key = self._key(labels)
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount


class Gauge(_Values):
    kind = "gauge"

    def set(self, value: float, **labels: str) -> None:
        key = self._key(labels)
        with self._lock:
            self._values[key] = float(value)


class Histogram(_Metric):
    kind = "histogram"

    def __init__(
        self,
        lock: threading.Lock,
        name: str,
        help: str,
        labels: Sequence[str],
        buckets: Sequence[float],
    ) -> None:
        super().__init__(lock, name, help, labels)
        if "le" in self.labelnames:
            raise ValueError("'le' is the histogram's own label")
        self.buckets = tuple(sorted(buckets))
        # Per label set: the count in each bucket (not cumulative), the sum, the count.
        self._series: dict[Labels, tuple[list[int], list[float]]] = {}

    def observe(self, value: float, **labels: str) -> None:
        key = self._key(labels)
        with self._lock:
            counts, total = self._series.setdefault(key, ([0] * len(self.buckets), [0.0, 0.0]))
            for index, bound in enumerate(self.buckets):
                if value <= bound:
                    counts[index] += 1
                    break
            total[0] += value
            total[1] += 1

    def count(self, **labels: str) -> int:
        with self._lock:
            series = self._series.get(self._key(labels))
            return 0 if series is None else int(series[1][1])

    def samples(self) -> Iterator[str]:
        for key, (counts, (total, count)) in sorted(self._series.items()):
            cumulative = 0
            for bound, n in zip(self.buckets, counts, strict=True):
                cumulative += n
                labels = _labels((*self.labelnames, "le"), (*key, _number(bound)))
                yield f"{self.name}_bucket{labels} {cumulative}"
            labels = _labels((*self.labelnames, "le"), (*key, "+Inf"))
            yield f"{self.name}_bucket{labels} {int(count)}"
            yield f"{self.name}_sum{_labels(self.labelnames, key)} {_number(total)}"
            yield f"{self.name}_count{_labels(self.labelnames, key)} {int(count)}"


class Registry:
    """Metrics by name, rendered together in the text format."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._metrics: dict[str, _Metric] = {}

    def _add(self, metric: _Metric) -> None:
        if metric.name in self._metrics:
            raise ValueError(f"metric {metric.name} is registered already")
        self._metrics[metric.name] = metric

    def counter(self, name: str, help: str, labels: Sequence[str] = ()) -> Counter:
        metric = Counter(self._lock, name, help, labels)
        self._add(metric)
        return metric

    def gauge(self, name: str, help: str, labels: Sequence[str] = ()) -> Gauge:
        metric = Gauge(self._lock, name, help, labels)
        self._add(metric)
        return metric

    def histogram(
        self, name: str, help: str, labels: Sequence[str], buckets: Sequence[float]
    ) -> Histogram:
        metric = Histogram(self._lock, name, help, labels, buckets)
        self._add(metric)
        return metric

    def render(self) -> str:
        lines: list[str] = []
        with self._lock:
            for metric in self._metrics.values():
                lines.extend(metric.header())
                lines.extend(metric.samples())
        return "\n".join(lines) + "\n"


class Metrics:
    """The service's metrics (names and labels are documented in docs/architecture.md)."""

    def __init__(self, version: str = "unknown") -> None:
        self.registry = registry = Registry()
        self.build_info = registry.gauge(
            "ambiance_build_info", "The running ambiance's version (always 1).", ["version"]
        )
        self.bridge_requests = registry.counter(
            "ambiance_bridge_requests_total",
            "Requests sent to a Hue bridge (each attempt), by method and kind.",
            ["bridge", "method", "kind"],
        )
        self.bridge_errors = registry.counter(
            "ambiance_bridge_errors_total",
            "Failed Hue bridge requests (each attempt), by error.",
            ["bridge", "error"],
        )
        self.command_seconds = registry.histogram(
            "ambiance_command_seconds",
            "Time from a command reaching a room to its events being handled.",
            ["action"],
            COMMAND_BUCKETS,
        )
        self.commands = registry.counter(
            "ambiance_commands_total",
            "Commands to a room, by outcome: ok or the error code.",
            ["room", "action", "outcome"],
        )
        self.sessions = registry.gauge(
            "ambiance_sessions", "Sessions in a room now, by status.", ["room", "status"]
        )
        self.sessions_ended = registry.counter(
            "ambiance_sessions_total", "Sessions that ended, by outcome.", ["outcome"]
        )
        self.mqtt_connected = registry.gauge(
            "ambiance_mqtt_connected", "1 while the MQTT connection is up, else 0."
        )
        self.device_available = registry.gauge(
            "ambiance_device_available",
            "1 while a device answers, 0 while it is unavailable.",
            ["room", "device"],
        )
        self.build_info.set(1, version=version)

    def render(self) -> str:
        return self.registry.render()
