"""Device availability: a flag that logs once when a device fails and once when it recovers."""

from __future__ import annotations

import logging

from ambiance.core.events import Event, EventBus
from ambiance.core.views import DeviceHealth
from ambiance.infra.clock import Clock
from ambiance.infra.metrics import Metrics

log = logging.getLogger("ambiance.core.health")


class Availability:
    def __init__(
        self,
        room: str,
        device: str,
        kind: str,
        bus: EventBus,
        clock: Clock,
        metrics: Metrics | None = None,
    ) -> None:
        self.room = room
        self.device = device
        self.kind = kind
        self.bus = bus
        self.clock = clock
        self.available = True
        self.error: str | None = None
        self.since: float | None = None
        self.metrics = metrics
        self._answered = False

    def ok(self) -> None:
        if not self._answered:  # the gauge shows a device once it first answered
            self._answered = True
            self._gauge(True)
        if self.available:
            return
        log.info("%s%s (%s) is back", self._prefix, self.device, self.kind)
        self._set(True, None)

    def failed(self, exc: BaseException) -> None:
        message = str(exc) or type(exc).__name__
        if not self.available:
            self.error = message  # keep the latest reason, without logging again
            return
        log.warning("%s%s (%s) is unavailable: %s", self._prefix, self.device, self.kind, message)
        self._set(False, message)

    @property
    def _prefix(self) -> str:
        return f"{self.room}: " if self.room else ""  # the service's own devices have no room

    def view(self) -> DeviceHealth:
        return DeviceHealth(
            device=self.device,
            kind=self.kind,
            available=self.available,
            error=self.error,
            since=self.since,
        )

    def _gauge(self, available: bool) -> None:
        if self.metrics is not None:
            self.metrics.device_available.set(
                1 if available else 0, room=self.room, device=self.device
            )

    def _set(self, available: bool, error: str | None) -> None:
        self._gauge(available)
        self.available = available
        self.error = error
        self.since = self.clock.now()
        self.bus.publish(Event("device.health", self.room, self.since, self.view().model_dump()))
