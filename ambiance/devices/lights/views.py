"""The room's lights as the API, the MQTT state and the page show them."""

from __future__ import annotations

from ambiance.core.coordinator import Coordinator
from ambiance.core.views import DesiredLights, LightsView, LightView
from ambiance.devices.lights.base import LightState, LightTarget, Snapshot

LightsCoordinator = Coordinator[LightTarget, list[LightState], Snapshot]


def lights_view(coordinator: LightsCoordinator) -> LightsView:
    desired = coordinator.desired
    return LightsView(
        backend=coordinator.health.kind,
        synced=coordinator.synced,
        restoring=coordinator.restoring,
        desired=(
            None
            if desired is None
            else DesiredLights(
                on=desired.on,
                brightness=desired.brightness,
                kelvin=desired.kelvin,
                transition=desired.transition,
            )
        ),
        lights=[
            LightView(
                id=light.id,
                name=light.name,
                on=light.on,
                brightness=light.brightness,
                kelvin=light.kelvin,
                reachable=light.reachable,
            )
            for light in coordinator.state or []
        ],
        health=coordinator.health.view(),
    )
