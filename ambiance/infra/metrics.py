"""The service's metrics, on Prometheus' own client (prometheus_client), in text format 0.0.4.

Each `Metrics` has a registry of its own rather than prometheus_client's global one, so
that the tests and several cores in one process keep their counts apart. The thin typed
wrappers keep the callers' calls as they were (`metrics.commands.inc(room=..., ...)`,
labels as keywords); prometheus_client is thread-safe, so paho's thread may set values
while the event loop counts Hue requests.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Generic, TypeVar

import prometheus_client
from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4, CollectorRegistry, generate_latest
from prometheus_client.metrics import MetricWrapperBase

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
COMMAND_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

# No `_created` series beside each counter and histogram: the exposition stays what
# scrapers saw before, and a start time per series is no use to this service's dashboards.
# (A process-wide switch of prometheus_client's, read at each scrape.)
prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]

_Wrapped = TypeVar("_Wrapped", bound=MetricWrapperBase)


class _Family(Generic[_Wrapped]):
    """One metric with fixed label names; its calls take the label values as keywords."""

    def __init__(
        self, metric: _Wrapped, name: str, labelnames: Sequence[str], registry: CollectorRegistry
    ) -> None:
        self._metric = metric
        self._registry = registry
        self.name = name
        self.labelnames = tuple(labelnames)

    def _check(self, labels: dict[str, str]) -> None:
        if set(labels) != set(self.labelnames):
            raise ValueError(f"{self.name} takes labels {self.labelnames}, not {tuple(labels)}")

    def _series(self, labels: dict[str, str]) -> _Wrapped:
        self._check(labels)
        return self._metric.labels(**labels) if self.labelnames else self._metric

    def _sample(self, suffix: str, labels: dict[str, str]) -> float:
        # A registry lookup (a scrape's worth of work): for tests and checks, not hot paths.
        self._check(labels)
        found = self._registry.get_sample_value(self.name + suffix, labels)
        return 0.0 if found is None else found


class Counter(_Family[prometheus_client.Counter]):
    def inc(self, amount: float = 1.0, **labels: str) -> None:
        """Add `amount` (never negative: a ValueError) to the series of these labels."""
        self._series(labels).inc(amount)

    def value(self, **labels: str) -> float:
        return self._sample("", labels)


class Gauge(_Family[prometheus_client.Gauge]):
    def set(self, value: float, **labels: str) -> None:
        self._series(labels).set(value)

    def value(self, **labels: str) -> float:
        return self._sample("", labels)


class Histogram(_Family[prometheus_client.Histogram]):
    def observe(self, value: float, **labels: str) -> None:
        self._series(labels).observe(value)

    def count(self, **labels: str) -> int:
        """How many values were observed for these labels."""
        return int(self._sample("_count", labels))


class Metrics:
    """The service's metrics (names and labels are documented in docs/architecture.md)."""

    def __init__(self, version: str = "unknown") -> None:
        self.registry = CollectorRegistry()
        self._apart = CollectorRegistry()
        self.build_info = self._gauge(
            "ambiance_build_info", "The running ambiance's version (always 1).", ["version"]
        )
        self.bridge_requests = self._counter(
            "ambiance_bridge_requests_total",
            "Requests sent to a Hue bridge (each attempt), by method and kind.",
            ["bridge", "method", "kind"],
        )
        self.bridge_errors = self._counter(
            "ambiance_bridge_errors_total",
            "Failed Hue bridge requests (each attempt), by error.",
            ["bridge", "error"],
        )
        self.command_seconds = Histogram(
            prometheus_client.Histogram(
                "ambiance_command_seconds",
                "Time from a command reaching a room to its events being handled.",
                ["action"],
                registry=self.registry,
                buckets=COMMAND_BUCKETS,
            ),
            "ambiance_command_seconds",
            ["action"],
            self.registry,
        )
        self.commands = self._counter(
            "ambiance_commands_total",
            "Commands to a room, by outcome: ok or the error code.",
            ["room", "action", "outcome"],
        )
        self.sessions = self._gauge(
            "ambiance_sessions", "Sessions in a room now, by status.", ["room", "status"]
        )
        # prometheus_client names a counter's family without `_total`, so this counter
        # would clash with the gauge `ambiance_sessions` in one registry (OpenMetrics' rule;
        # the text format has no such rule, and both names were scraped before): it keeps a
        # registry of its own, rendered after the first.
        self.sessions_ended = self._counter(
            "ambiance_sessions_total",
            "Sessions that ended, by outcome.",
            ["outcome"],
            registry=self._apart,
        )
        self.mqtt_connected = self._gauge(
            "ambiance_mqtt_connected", "1 while the MQTT connection is up, else 0.", []
        )
        self.device_available = self._gauge(
            "ambiance_device_available",
            "1 while a device answers, 0 while it is unavailable.",
            ["room", "device"],
        )
        self.build_info.set(1, version=version)

    def _counter(
        self, name: str, help: str, labels: list[str], registry: CollectorRegistry | None = None
    ) -> Counter:
        registry = registry or self.registry
        metric = prometheus_client.Counter(name, help, labels, registry=registry)
        return Counter(metric, name, labels, registry)

    def _gauge(self, name: str, help: str, labels: list[str]) -> Gauge:
        metric = prometheus_client.Gauge(name, help, labels, registry=self.registry)
        return Gauge(metric, name, labels, self.registry)

    def render(self) -> str:
        """Every metric in the text format 0.0.4 (served as CONTENT_TYPE)."""
        return (generate_latest(self.registry) + generate_latest(self._apart)).decode()
