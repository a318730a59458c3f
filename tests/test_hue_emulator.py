"""The Hue emulator itself behaves like a bridge, checked with a plain HTTP client."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.hue_emulator import HueEmulator

USER = "emulator-test-user"


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def emu(clock: Clock) -> Iterator[HueEmulator]:
    with HueEmulator(users=[USER], now=clock) as emulator:
        yield emulator


def call(emu: HueEmulator, method: str, path: str, body: Any = None) -> Any:
    conn = http.client.HTTPConnection(emu.address, timeout=5)
    try:
        conn.request(method, path, json.dumps(body) if body is not None else None)
        response = conn.getresponse()
        assert response.status == 200
        return json.loads(response.read())
    finally:
        conn.close()


def put(emu: HueEmulator, light: str, body: dict[str, Any]) -> Any:
    return call(emu, "PUT", f"/api/{USER}/lights/{light}/state", body)


def test_default_room(emu: HueEmulator) -> None:
    groups = call(emu, "GET", f"/api/{USER}/groups")
    assert groups["1"]["name"] == "Bedroom" and groups["1"]["lights"] == ["1", "2", "3"]
    assert groups["1"]["state"] == {"all_on": False, "any_on": True}
    light = call(emu, "GET", f"/api/{USER}/lights/1")
    assert light["type"] == "Extended color light"
    assert light["capabilities"]["control"]["ct"] == {"min": 153, "max": 454}


def test_registration_needs_the_button_in_the_last_30_s(emu: HueEmulator, clock: Clock) -> None:
    body = {"devicetype": "test#host"}
    assert call(emu, "POST", "/api", body)[0]["error"]["type"] == 101
    emu.press_link_button()
    clock.t += 29
    username = call(emu, "POST", "/api", body)[0]["success"]["username"]
    assert username in emu.users and len(username) == 40
    clock.t += 2
    assert call(emu, "POST", "/api", body)[0]["error"]["type"] == 101


def test_unknown_user(emu: HueEmulator) -> None:
    assert call(emu, "GET", "/api/nobody/lights") == [
        {"error": {"type": 1, "address": "/lights", "description": "unauthorized user"}}
    ]
    config = call(emu, "GET", "/api/nobody/config")
    assert config["apiversion"] == "1.50.0" and "whitelist" not in config


def test_unknown_resource(emu: HueEmulator) -> None:
    assert call(emu, "GET", f"/api/{USER}/lights/9") == [
        {
            "error": {
                "type": 3,
                "address": "/lights/9",
                "description": "resource, /lights/9, not available",
            }
        }
    ]


def test_values_are_checked_and_ct_clamped_per_light(emu: HueEmulator) -> None:
    answer = put(emu, "1", {"bri": 0, "ct": 500, "transitiontime": 70000, "on": "yes"})
    assert [item.get("error", {}).get("type") for item in answer] == [7, None, 7, 7]
    assert answer[0]["error"]["description"] == "invalid value, 0, for parameter, bri"
    assert emu.state("1")["ct"] == 454  # valid, clamped silently into 153-454


def test_an_off_light_refuses_colour_unless_switched_on(emu: HueEmulator) -> None:
    answer = put(emu, "3", {"bri": 20, "ct": 200, "on": False})
    assert [item.get("error", {}).get("type") for item in answer] == [201, 201, None]
    assert answer[0]["error"]["description"] == (
        "parameter, bri, is not modifiable. Device is set to off."
    )
    put(emu, "3", {"on": True, "bri": 20, "transitiontime": 4})
    assert (emu.state("3")["on"], emu.state("3")["bri"]) == (True, 20)
    assert emu.last_transitiontime("3") == 4


def test_off_with_attributes_on_a_lit_light_is_one_step(emu: HueEmulator) -> None:
    put(emu, "1", {"on": False, "bri": 33, "xy": [0.2, 0.3], "transitiontime": 0})
    state = emu.state("1")
    assert (state["on"], state["bri"], state["xy"], state["colormode"]) == (
        False,
        33,
        [0.2, 0.3],
        "xy",
    )


def test_group_action_reaches_every_light(emu: HueEmulator) -> None:
    emu.add_light("4", "Warm", ct_min=200, ct_max=400)
    emu.groups["1"]["lights"].append("4")
    call(emu, "PUT", f"/api/{USER}/groups/1/action", {"on": True, "ct": 500, "bri": 10})
    assert [emu.state(i)["ct"] for i in ("1", "2", "3", "4")] == [454, 500, 454, 400]
    group = call(emu, "GET", f"/api/{USER}/groups/1")
    assert group["state"] == {"all_on": True, "any_on": True}
    assert group["action"]["ct"] == 500


def test_request_log_and_faults(emu: HueEmulator) -> None:
    emu.fail_next(1, 901, path_contains="/lights")
    assert call(emu, "GET", f"/api/{USER}/lights")[0]["error"]["type"] == 901
    assert "1" in call(emu, "GET", f"/api/{USER}/lights")
    emu.respond_raw_next(1, 503, "<html>busy</html>")
    conn = http.client.HTTPConnection(emu.address, timeout=5)
    conn.request("GET", f"/api/{USER}/config")
    response = conn.getresponse()
    assert (response.status, response.read()) == (503, b"<html>busy</html>")
    conn.close()
    assert emu.count("GET", "/lights") == 2
    assert emu.count("GET", f"/api/{USER}/config") == 1
    emu.clear_requests()
    assert emu.count() == 0


def test_restarts_on_the_same_port(emu: HueEmulator) -> None:
    port = emu.port
    emu.stop()
    with pytest.raises(ConnectionRefusedError):
        call(emu, "GET", f"/api/{USER}/lights")
    emu.start()
    assert emu.port == port
    assert "1" in call(emu, "GET", f"/api/{USER}/lights")


def test_a_restart_can_bring_every_light_back_at_its_power_on_default() -> None:
    emu = HueEmulator(users=[USER], lights={}, groups={})
    emu.add_light("1", "Bed", on=False, bri=20, ct=153, ct_max=500)
    emu.add_light("2", "Narrow", on=True, bri=5, ct=153, ct_min=153, ct_max=300)
    emu.add_light("3", "Colour", on=False, bri=9, colormode="hs", supports_ct=False)
    emu.add_group("1", "Bedroom", ["1", "2", "3"])
    with emu:
        emu.stop()
        emu.start()  # a restart alone keeps the lights as they were
        assert call(emu, "GET", f"/api/{USER}/lights/1")["state"]["on"] is False
        emu.stop()
        emu.start(reset_lights=True)
        lights = call(emu, "GET", f"/api/{USER}/lights")
    states = {i: lights[i]["state"] for i in "123"}
    assert {(s["on"], s["bri"]) for s in states.values()} == {(True, 254)}
    assert (states["1"]["ct"], states["1"]["colormode"]) == (366, "ct")
    assert states["2"]["ct"] == 300  # 2700 K, as near as that light goes
    assert (states["3"]["xy"], states["3"]["colormode"]) == ([0.4573, 0.41], "xy")
    assert lights["1"]["name"] == "Bed"  # and the bridge still knows its lights
