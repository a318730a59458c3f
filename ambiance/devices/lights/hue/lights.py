"""One room's Hue lights: a Hue group on a (shared) bridge, one group command per scene
change, an exact per-light snapshot and restore."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from ambiance.devices.lights.base import (
    LightState,
    LightTarget,
    SavedLight,
    Snapshot,
    SnapshotsAsJson,
    bri_to_percent,
    kelvin_to_mired,
    mired_to_kelvin,
    percent_to_bri,
    seconds_to_transitiontime,
)
from ambiance.devices.lights.hue.bridge import HueBridge
from ambiance.devices.lights.hue.errors import (
    BridgeBusy,
    DeviceOff,
    HueError,
    ResourceNotAvailable,
)

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]


def _ct_range(light: Mapping[str, Any]) -> tuple[int, int] | None:
    capabilities = light.get("capabilities")
    control = capabilities.get("control") if isinstance(capabilities, dict) else None
    ct = control.get("ct") if isinstance(control, dict) else None
    if isinstance(ct, dict):
        low, high = ct.get("min"), ct.get("max")
        # Not a range (a bridge in a bad way): left out, as if not said.
        if isinstance(low, int) and isinstance(high, int) and 0 < low <= high:
            return low, high
    return None


def _colour(state: Mapping[str, Any]) -> dict[str, Any]:
    """The attributes that reproduce a light's colour exactly, by its colormode."""
    mode = state.get("colormode")
    if mode == "xy" and "xy" in state:
        return {"xy": list(state["xy"])}
    if mode == "hs" and "hue" in state and "sat" in state:
        return {"hue": state["hue"], "sat": state["sat"]}
    if "ct" in state and mode in ("ct", None):
        return {"ct": state["ct"]}
    return {}


def _resources(reply: Any, bridge: HueBridge, what: str) -> dict[str, Any]:
    """A GET /lights or /groups reply, which must be an object of objects; anything else
    (JSON, but not what a bridge sends) means a bridge in a bad way: busy, retried."""
    if isinstance(reply, dict) and all(isinstance(v, dict) for v in reply.values()):
        return reply
    raise BridgeBusy(f"the Hue bridge at {bridge.address} sent {what} in a shape it never sends")


class HueLights(SnapshotsAsJson):
    """The lights of one room: one Hue group on a (shared) bridge."""

    kind = "hue"

    def __init__(self, bridge: HueBridge, group: str, *, sleep: Sleep | None = None) -> None:
        self.bridge = bridge
        self.group = group  # a group name or numeric id, as the config says
        # Waits out a restore's fade: the bridge's clock, unless a test passes its own.
        self._sleep = sleep or bridge.clock.sleep
        self.group_id: str | None = None
        self.light_ids: tuple[str, ...] = ()
        self.ct_range: tuple[int, int] | None = None  # widest across the group's lights

    async def start(self) -> None:
        groups = _resources(await self.bridge.request("GET", "/groups"), self.bridge, "groups")
        group_id = self._find_group(groups)
        self.group_id = group_id
        self.light_ids = tuple(str(i) for i in groups[group_id].get("lights", []))
        self._learn(await self._lights())
        log.info(
            "Hue group %r is %s with lights %s",
            self.group,
            group_id,
            ", ".join(self.light_ids) or "none",
        )

    async def stop(self) -> None:
        return None  # the bridge is shared; its owner stops it

    def _find_group(self, groups: Mapping[str, Any]) -> str:
        if self.group in groups:
            return self.group
        named = [gid for gid, g in groups.items() if g.get("name") == self.group]
        if not named:  # "bedroom" for "Bedroom", if that is unambiguous
            wanted = self.group.casefold()
            named = [gid for gid, g in groups.items() if str(g.get("name")).casefold() == wanted]
        if len(named) == 1:
            return named[0]
        known = ", ".join(f"{gid} {g.get('name')!r}" for gid, g in sorted(groups.items()))
        reason = "several groups are" if named else "no group is"
        raise ResourceNotAvailable(
            f"{reason} named {self.group!r} on the Hue bridge at {self.bridge.address}"
            f" (known groups: {known or 'none'})"
        )

    async def _ensure_started(self) -> str:
        if self.group_id is None:
            await self.start()
        assert self.group_id is not None
        return self.group_id

    async def _lights(self) -> dict[str, Any]:
        """One GET /lights, filtered to this room's lights (in the group's order)."""
        every = _resources(await self.bridge.request("GET", "/lights"), self.bridge, "lights")
        return {i: every[i] for i in self.light_ids if i in every}

    def _learn(self, lights: Mapping[str, Any]) -> None:
        ranges = [r for r in map(_ct_range, lights.values()) if r is not None]
        # The group command takes one ct; the bridge clamps it into each light's own
        # range, so asking within the widest range lets every light go as far as it can.
        self.ct_range = (min(r[0] for r in ranges), max(r[1] for r in ranges)) if ranges else None

    async def read(self) -> list[LightState]:
        await self._ensure_started()
        lights = await self._lights()
        self._learn(lights)
        out = []
        for light_id, light in lights.items():
            state = self.bridge.light_state(light_id, light)
            ct = state.get("ct")
            in_ct = ct is not None and state.get("colormode", "ct") == "ct"
            out.append(
                LightState(
                    id=light_id,
                    name=str(light.get("name", light_id)),
                    on=bool(state.get("on")),
                    brightness=bri_to_percent(state["bri"]) if "bri" in state else None,
                    kelvin=mired_to_kelvin(ct) if in_ct and ct else None,
                    # A light whose on/off the bridge did not validly say: shown as not
                    # reachable rather than guessed.
                    reachable=state.get("reachable", True) and "on" in state,
                )
            )
        return out

    async def apply(self, target: LightTarget) -> None:
        group_id = await self._ensure_started()
        body: dict[str, Any]
        if target.on:
            body = {"on": True, "bri": percent_to_bri(target.brightness)}
            if target.kelvin is not None and self.ct_range is not None:
                body["ct"] = kelvin_to_mired(target.kelvin, *self.ct_range)
        else:
            body = {"on": False}
        body["transitiontime"] = seconds_to_transitiontime(target.transition)
        await self.bridge.request("PUT", f"/groups/{group_id}/action", body)

    async def snapshot(self) -> Snapshot:
        await self._ensure_started()
        saved = []
        for light_id, light in (await self._lights()).items():
            state = self.bridge.light_state(light_id, light)
            # Only what the bridge validly said: without `on`, the restore leaves the
            # light on or off as it is then.
            exact: dict[str, Any] = {"on": state["on"]} if "on" in state else {}
            if "bri" in state:
                exact["bri"] = state["bri"]
            exact |= _colour(state)
            saved.append(SavedLight(light_id, str(light.get("name", light_id)), exact))
        return Snapshot(tuple(saved))

    async def restore(self, snapshot: Snapshot, transition: float) -> None:
        """Put every light back as saved; lights that were off are faded down, then
        switched off with their saved bri and colour.

        Two phases for a light that was off, because (1) bri/ct cannot be set on an off
        light (error 201) and (2) the firmware resets bri to 1 at the next "on" when a
        light was switched off *with* a transition. So: fade it to bri 1 over the
        transition, wait once for all of them, then in one step set its saved bri and
        colour and switch it off with no transition.
        """
        await self._ensure_started()
        steps = seconds_to_transitiontime(transition)
        current = await self._lights()
        failures: list[HueError] = []

        async def put(light_id: str, body: dict[str, Any]) -> bool:
            try:
                await self.bridge.request("PUT", f"/lights/{light_id}/state", body)
            except DeviceOff as exc:
                # The light is already off (by hand, or it was never switched on): there
                # is nothing left to fade, and an off light keeps what it has.
                log.debug("restore: light %s is already off (%s)", light_id, exc)
                return False
            except HueError as exc:
                failures.append(exc)
                return False
            return True

        to_switch_off: list[SavedLight] = []
        faded = False
        for saved in snapshot.lights:
            if saved.id not in current:
                log.warning("restore: light %s (%s) is gone from the bridge", saved.id, saved.name)
                continue
            colour = {k: v for k, v in saved.state.items() if k not in ("on", "bri")}
            if saved.state.get("on"):
                body = {"on": True, **self._bri(saved), **colour, "transitiontime": steps}
                await put(saved.id, body)
                continue
            if "on" not in saved.state:
                # Its on/off was not known at the start: leave it on or off, and give back
                # its bri and colour (an off light refuses them: 201, and keeps its own).
                if self._bri(saved) or colour:
                    await put(saved.id, {**self._bri(saved), **colour, "transitiontime": steps})
                continue
            to_switch_off.append(saved)
            # With no transition there is nothing to fade: phase 2 alone switches it off.
            now = self.bridge.light_state(saved.id, current[saved.id])
            if steps and now.get("on"):
                faded |= await put(saved.id, {"bri": 1, "transitiontime": steps})

        if faded:
            await self._sleep(transition)
        for saved in to_switch_off:
            colour = {k: v for k, v in saved.state.items() if k not in ("on", "bri")}
            await put(saved.id, {"on": False, **self._bri(saved), **colour, "transitiontime": 0})

        if failures:
            for extra in failures[1:]:
                log.warning("restore: %s", extra)
            raise failures[0]

    @staticmethod
    def _bri(saved: SavedLight) -> dict[str, Any]:
        return {"bri": saved.state["bri"]} if "bri" in saved.state else {}
