"""What every door is: one class, made as `Door(core, mqtt)` from the narrow core facade
(core/facade.py) and the MQTT connection, and started and stopped with the service (the
shape of Zigbee2MQTT's extensions). A door does nothing before `start()`."""

from __future__ import annotations

from typing import Protocol


class Door(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...
