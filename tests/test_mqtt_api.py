"""The MQTT side against a real Mosquitto: phones on do-not-disturb, distractions,
commands in, state out, and a broker that goes away mid-session."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ambiance.config import DevicesConfig, RoomConfig, Settings
from ambiance.core.profiles import DayCheck, NotToday, Profile, refuse_if_stopped
from ambiance.devices.distractions import (
    MqttDistraction,
    TasmotaDistraction,
    Zigbee2MqttDistraction,
)
from ambiance.devices.phones import PhoneConfig
from ambiance.doors.mqtt_api import COMMAND_LIMIT, HEALTH_ANSWER
from ambiance.infra.clock import FakeClock
from ambiance.infra.mqtt import MAX_PACKET
from ambiance.infra.store import Store
from ambiance.service import Ambiance
from tests.fake_zigbee2mqtt import FakeLight, FakeZigbee2Mqtt
from tests.helpers import EventLog, make_library
from tests.mosquitto import Mosquitto, Received, Subscriber, async_read_retained
from tests.mqtt_fixtures import mqtt_settings

pytestmark = pytest.mark.anyio

PHONES = [
    PhoneConfig(name="sams-pixel", mode="priority_only"),
    PhoneConfig(name="alex-phone", mode="total_silence"),
]


@dataclass
class Rig:
    core: Ambiance
    clock: FakeClock
    broker: Mosquitto
    sub: Subscriber
    log: EventLog

    def command(self, payload: str | bytes, room: str = "bedroom") -> None:
        self.sub.publish(f"ambiance/{room}/cmd", payload)

    async def state(self, **expected: Any) -> dict[str, Any]:
        """Wait for a state message of the bedroom with these fields."""

        def fits(m: Received) -> bool:
            try:
                body = json.loads(m.payload)
            except ValueError:
                return False
            return all(body.get(k) == v for k, v in expected.items())

        message = await self.sub.async_wait_for("ambiance/bedroom/state", predicate=fits)
        return dict(json.loads(message.payload))


def settings(broker: Mosquitto, tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path,
        mqtt=mqtt_settings(broker),
        rooms={
            "bedroom": RoomConfig(
                routine="quick",
                phones=PHONES,
                distractions=[
                    Zigbee2MqttDistraction(type="zigbee2mqtt", device="tv_plug"),
                    TasmotaDistraction(type="tasmota", device="fan"),
                    MqttDistraction(
                        type="mqtt",
                        name="screen",
                        command_topic="home/screen/set",
                        payload_on="1",
                        payload_off="0",
                    ),
                ],
            ),
        },
        devices=DevicesConfig(retry_initial=0.02, retry_max=0.1, settle_timeout=0.5),
    )


@pytest.fixture
async def rig(mosquitto: Mosquitto, tmp_path: Path) -> AsyncIterator[Rig]:
    with (
        Subscriber(mosquitto, "ambiance/#", "zigbee2mqtt/+/set", "cmnd/#", "home/#") as sub,
        # The TV plug in Zigbee2MQTT: its state retained, and it answers its commands.
        FakeZigbee2Mqtt(mosquitto, [FakeLight("tv_plug")]),
    ):
        # The fan's own state, as it would have published it (retained).
        sub.publish("stat/fan/POWER", "OFF", retain=True)
        clock = FakeClock()
        core = Ambiance(settings(mosquitto, tmp_path), clock=clock, library=make_library())
        log = EventLog(core.bus)
        async with core:
            assert await core.mqtt.wait_ready(5)
            yield Rig(core, clock, mosquitto, sub, log)


def dnd(sub: Subscriber, phone: str) -> list[dict[str, Any]]:
    return [json.loads(m.payload) for m in sub.matching(f"ambiance/phones/{phone}/dnd")]


async def test_dnd_on_and_off_for_every_phone(rig: Rig) -> None:
    rig.command('{"action": "start"}')
    for phone in PHONES:
        message = await rig.sub.async_wait_for(
            f"ambiance/phones/{phone.name}/dnd", predicate=lambda m: b'"on"' in m.payload
        )
        body = json.loads(message.payload)
        assert message.qos == 1  # published QoS 1, so a phone that is away gets it later
        assert body["state"] == "on"
        assert body["mode"] == phone.mode
        assert body["room"] == "bedroom"
        assert body["until"].startswith("2027-01-15T08:")  # the session's expected end
    rig.command('{"action": "stop"}')
    for phone in PHONES:
        message = await rig.sub.async_wait_for(
            f"ambiance/phones/{phone.name}/dnd", predicate=lambda m: b'"off"' in m.payload
        )
        assert json.loads(message.payload)["mode"] == "off"
    # A phone that connects later reads the retained "off".
    retained = await async_read_retained(rig.broker, "ambiance/phones/+/dnd")
    assert {t: json.loads(p)["state"] for t, p in retained.items()} == {
        "ambiance/phones/sams-pixel/dnd": "off",
        "ambiance/phones/alex-phone/dnd": "off",
    }


async def test_retained_state_is_right_for_a_late_subscriber(rig: Rig) -> None:
    rig.command('{"action": "start", "routine": "timed"}')
    await rig.state(status="running", stage="a")
    rig.command("next")
    await rig.state(stage="b")
    retained = await async_read_retained(rig.broker, "ambiance/+/state")
    body = json.loads(retained["ambiance/bedroom/state"])
    assert body["status"] == "running"
    assert body["routine"] == "timed"
    assert body["stage"] == "b"
    assert body["stage_remaining"] == 120
    assert body["total_remaining"] == 150
    assert body["scene"] == "dark"
    assert body["dnd"] is True
    assert body["stage_ends_at"] is not None


async def test_each_command_round_trips(rig: Rig) -> None:
    rig.core.profiles.create(Profile(name="sam"))
    rig.command('{"action": "start", "routine": "timed", "profile": "sam"}')
    body = await rig.state(status="running", stage="a")
    assert body["profile"] == "sam"
    rig.command('{"action": "pause"}')
    await rig.state(status="paused")
    rig.command('{"action": "resume"}')
    await rig.state(status="running", stage="a")
    rig.command('{"action": "toggle_pause"}')
    await rig.state(status="paused")
    rig.command("toggle_pause")
    await rig.state(status="running", stage="a")
    rig.command('{"action": "next"}')
    await rig.state(stage="b")
    rig.command('{"action": "previous"}')
    await rig.state(stage="a", stage_remaining=60)
    rig.command('{"action": "goto", "stage": "c"}')
    await rig.state(stage="c", stage_remaining=30)
    rig.command('{"action": "extend", "seconds": 45}')
    await rig.state(stage="c", stage_remaining=75)
    rig.command('{"action": "set_stage", "stage": "b", "remaining": 12}')
    await rig.state(stage="b", stage_remaining=12)
    rig.command('{"action": "scene", "scene": "warm"}')
    await rig.state(stage="b", scene="warm")
    rig.command('{"action": "stop"}')
    await rig.state(status="idle", stage=None)
    assert rig.sub.matching("ambiance/bedroom/error") == []


async def test_start_fitted_to_the_time_you_have(rig: Rig) -> None:
    """`start` with `minutes`, from the one command table: routine `quick` (a 60 s, b 120 s,
    c 30 s after an untimed prepare) can take 2.5 to 7 minutes."""
    rig.command('{"action": "start", "minutes": 5}')
    body = await rig.state(status="running", stage="prepare")
    assert body["total_remaining"] == 300  # getting ready is untimed: the rest is 5 minutes
    session = rig.core.room("bedroom").session
    assert session is not None
    lengths = [stage.duration for stage in session.routine.stages]
    assert lengths[0] is None and sum(d or 0 for d in lengths) == 300
    rig.command('{"action": "next"}')
    body = await rig.state(stage="a")
    assert body["stage_remaining"] == lengths[1]
    rig.command('{"action": "stop"}')
    await rig.state(status="idle")
    assert rig.sub.matching("ambiance/bedroom/error") == []

    # Too short for the routine, and not a number of minutes: said on the error topic.
    for payload, words in [
        ('{"action": "start", "minutes": 2}', "the shortest possible is 2.5 minutes"),
        ('{"action": "start", "minutes": 60}', "the longest possible is 7 minutes"),
        ('{"action": "start", "minutes": "20"}', "minutes"),
        ('{"action": "start", "minutes": 0}', "minutes"),
    ]:
        rig.command(payload)
        message = await rig.sub.async_wait_for(
            "ambiance/bedroom/error",
            predicate=lambda m, sent=payload: json.loads(m.payload)["command"] == sent,
        )
        error = json.loads(message.payload)["error"]
        assert error["code"] == "invalid_input", payload
        assert words in error["message"], (payload, error)
    assert rig.core.room("bedroom").session is None  # nothing started


@pytest.mark.parametrize(
    ("payload", "code", "words"),
    [
        (b"{not json", "invalid_input", "not JSON"),
        (b'{"action": "dance"}', "invalid_input", "unknown action"),
        (b'{"stage": "a"}', "invalid_input", "needs an `action`"),
        (b'{"action": "goto"}', "invalid_input", "stage"),
        (b'{"action": "goto", "stage": "nowhere"}', "stage_not_found", "'nowhere'"),
        (b'{"action": "scene", "scene": "disco"}', "scene_not_found", "'disco'"),
        (b'{"action": "extend", "seconds": -4}', "invalid_input", "seconds"),
        (b'{"action": "next", "extra": 1}', "invalid_input", "extra"),
        (b"[1, 2, 3]", "invalid_input", "JSON object"),
        (b'"next"', "invalid_input", "JSON object"),
        (b"\xff\xfe\x00garbage", "invalid_input", "UTF-8"),
        (b"[" * 100_000 + b"]" * 100_000, "invalid_input", ""),
        (b'{"action": "next", "pad": "' + b"x" * 20_000 + b'"}', "invalid_input", "too large"),
        (b'{"action": "resume"}', "conflict", "no session"),
    ],
    ids=[
        "not-json",
        "unknown-action",
        "no-action",
        "missing-field",
        "unknown-stage",
        "unknown-scene",
        "out-of-range",
        "extra-field",
        "list",
        "string",
        "bytes",
        "deep",
        "huge",
        "conflict",
    ],
)
async def test_malformed_commands_are_reported_and_the_service_goes_on(
    rig: Rig, payload: bytes, code: str, words: str
) -> None:
    if code != "conflict":
        rig.command('{"action": "start"}')
        await rig.state(status="running")
    rig.command(payload)
    message = await rig.sub.async_wait_for("ambiance/bedroom/error")
    body = json.loads(message.payload)
    assert body["error"]["code"] == code
    assert words in body["error"]["message"]
    assert body["room"] == "bedroom"
    assert len(body["command"]) <= 200
    # Still serving.
    rig.command('{"action": "stop"}' if code != "conflict" else '{"action": "start"}')
    await rig.state(status="idle" if code != "conflict" else "running")


@pytest.mark.parametrize("size", [1024 * 1024, MAX_PACKET - 1024], ids=["1MiB", "max-packet"])
async def test_a_huge_command_is_reported_on_the_error_topic_and_logged_once(
    rig: Rig, caplog: pytest.LogCaptureFixture, size: int
) -> None:
    """Far over the door's limit and the connection's MAX_PAYLOAD, up to the Maximum Packet
    Size we give the broker (MQTT has no way to tell us of a message it dropped for us)."""
    caplog.set_level(logging.INFO)
    mark = len(caplog.records)
    payload = b'{"action": "next", "pad": "' + b"x" * (size - 29) + b'"}'
    assert len(payload) == size
    rig.command(payload)
    message = await rig.sub.async_wait_for("ambiance/bedroom/error", timeout=10)
    body = json.loads(message.payload)
    text = f"command too large: {size} bytes (the limit is {COMMAND_LIMIT})"
    assert body["error"] == {"code": "invalid_input", "message": text}
    assert body["room"] == "bedroom"
    ours = [r for r in caplog.records[mark:] if r.name.startswith("ambiance")]
    warnings = [r.getMessage() for r in ours if r.levelno >= logging.WARNING]
    assert warnings == [f"bedroom: MQTT command not done (invalid_input): {text}"]
    # Still serving.
    rig.command('{"action": "start"}')
    await rig.state(status="running")


async def test_a_command_for_an_unknown_room_is_reported_on_its_topic(rig: Rig) -> None:
    rig.command('{"action": "start", "id": "abc"}', room="kitchen")
    message = await rig.sub.async_wait_for("ambiance/kitchen/error")
    body = json.loads(message.payload)
    assert body["error"]["code"] == "room_not_found"
    assert "'kitchen'" in body["error"]["message"]
    assert body["id"] == "abc"


async def test_distractions_off_for_the_session_and_only_those_back_on(rig: Rig) -> None:
    rig.command('{"action": "start"}')
    off = await rig.sub.async_wait_for("zigbee2mqtt/tv_plug/set", '{"state": "OFF"}')
    assert off.qos == 1
    await rig.sub.async_wait_for("home/screen/set", "0")
    room = rig.core.room("bedroom")
    assert room.distractions is not None
    assert await room.distractions.wait_synced(5)
    # The fan was already off: it is neither switched off nor, later, on.
    assert [m.text for m in rig.sub.matching("cmnd/fan/POWER")] == [""]  # only the state query
    rig.command('{"action": "stop"}')
    await rig.sub.async_wait_for("zigbee2mqtt/tv_plug/set", '{"state": "ON"}')
    await rig.sub.async_wait_for("home/screen/set", "1")
    assert await room.distractions.wait_synced(5)
    assert [m.text for m in rig.sub.matching("cmnd/fan/POWER")] == [""]


async def test_the_broker_away_mid_session_still_delivers_dnd_and_state(rig: Rig) -> None:
    rig.command('{"action": "start"}')
    await rig.state(status="running")
    room = rig.core.room("bedroom")
    rig.broker.stop()
    mark = len(rig.log.events)
    await rig.log.wait_for(
        lambda e: (
            e.kind == "device.health" and e.data["device"] == "mqtt" and not e.data["available"]
        ),
        start=mark,
    )
    assert room.degraded  # the phones cannot be reached
    assert room.view().model_dump(mode="json")["health"]["status"] == "degraded"
    room.stop_session()  # while the broker is away: DND off and the state wait in memory
    rig.broker.start()  # same port; this broker kept nothing (no persistence)
    for phone in PHONES:
        await rig.sub.async_wait_for(
            f"ambiance/phones/{phone.name}/dnd",
            predicate=lambda m: json.loads(m.payload)["state"] == "off",
            timeout=10,
        )
    await rig.state(status="idle")
    retained = await async_read_retained(rig.broker, "ambiance/#")
    assert json.loads(retained["ambiance/bedroom/state"])["status"] == "idle"
    assert json.loads(retained["ambiance/phones/sams-pixel/dnd"])["state"] == "off"
    assert retained["ambiance/status"] == b"online"
    # The TV plug is switched back on once it is back on the broker too, and says so.
    assert await room.settle(5)
    assert not room.degraded


async def test_the_rest_api_shows_phones_and_distractions(rig: Rig) -> None:
    import httpx

    from api.app import create_app

    transport = httpx.ASGITransport(app=create_app(rig.core))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        body = (await client.post("/api/v1/rooms/bedroom/spa")).json()
        assert body["phones"] == [
            {
                "name": "sams-pixel",
                "mode": "priority_only",
                "dnd": True,
                "until": body["phones"][0]["until"],
            },
            {
                "name": "alex-phone",
                "mode": "total_silence",
                "dnd": True,
                "until": body["phones"][1]["until"],
            },
        ]
        assert body["phones"][0]["until"].startswith("2027-01-15T08:")
        assert body["distractions"]["off"] is True
        assert body["distractions"]["synced"] is True
        # What the devices say: the TV plug said it is off now; the screen has no state
        # topic, so it is what we last asked.
        assert {d["name"]: d["on"] for d in body["distractions"]["devices"]} == {
            "tv_plug": False,
            "fan": False,
            "screen": False,
        }
        assert body["music"] is None
        devices = [d["device"] for d in body["health"]["devices"]]
        assert devices == ["lights", "distractions", "phones"]
        body = (await client.delete("/api/v1/rooms/bedroom/spa")).json()
        assert [p["dnd"] for p in body["phones"]] == [False, False]
        assert body["distractions"]["off"] is False


async def test_phones_left_on_dnd_by_an_ended_session_are_taken_off_at_start(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    """The service died between a session's end and storing the phones' "off": at the
    next start the room has no session, so the phones are told "off"."""
    with Store.in_dir(tmp_path) as store:
        store.dnd.save("bedroom", "sams-pixel", {"state": "on", "session": "gone"})
    with Subscriber(mosquitto, "ambiance/phones/+/dnd") as sub:
        core = Ambiance(settings(mosquitto, tmp_path), clock=FakeClock(), library=make_library())
        async with core:
            for phone in PHONES:
                message = await sub.async_wait_for(
                    f"ambiance/phones/{phone.name}/dnd", predicate=lambda m: b'"off"' in m.payload
                )
                assert json.loads(message.payload)["mode"] == "off"
            assert core.room("bedroom").phones is not None
            assert not core.room("bedroom").phones.on


async def test_health_answers_stay_out_of_mqtt_and_the_logs(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    """Health answers (the profile's and today's) shape the session on this machine: no
    state message, error report or log line carries them."""
    health = {"pregnant": True, "nut_allergy": True, "blood_thinners": True}
    rig.core.profiles.create(Profile.model_validate({"name": "sam", "health": health}))
    today = '"today": {"painkillers_or_alcohol": true, "sore": ["neck"]}'
    with caplog.at_level(logging.DEBUG):
        rig.command('{"action": "start", "routine": "timed", "profile": "sam", ' + today + "}")
        await rig.state(status="running", profile="sam")
        rig.command('{"action": "stop"}')
        await rig.state(status="idle")
        rig.command('{"action": "start", "id": "c1", "today": {"fever_or_unwell": true}}')
        error = await rig.sub.async_wait_for(
            "ambiance/bedroom/error", predicate=lambda m: b"c1" in m.payload
        )
        rig.command('{"action": "start", "id": "c2", "today": "a fever and a sore neck"}')
        await rig.sub.async_wait_for(
            "ambiance/bedroom/error", predicate=lambda m: b"c2" in m.payload
        )
        # Answered while getting ready (`quick` begins with it): the same.
        rig.command('{"action": "start", "profile": "sam"}')
        await rig.state(status="running", stage="prepare")
        rig.command('{"action": "today", "painkillers_or_alcohol": true, "sore": ["neck"]}')
        await rig.log.wait_for(lambda e: e.kind == "session.adapted")
        rig.command('{"action": "today", "id": "c3", "sore": ["a sore neck"], "fever": true}')
        bad = await rig.sub.async_wait_for(
            "ambiance/bedroom/error", predicate=lambda m: b"c3" in m.payload
        )
        rig.command('{"action": "today", "id": "c4", "swollen_calf": true, "sore": ["neck"]}')
        refused = await rig.sub.async_wait_for(
            "ambiance/bedroom/error", predicate=lambda m: b"c4" in m.payload
        )
        await rig.state(status="idle")
    assert json.loads(bad.payload)["error"]["message"] == HEALTH_ANSWER
    assert json.loads(refused.payload)["error"]["code"] == "no_massage_today"
    room = rig.core.room("bedroom")
    assert room.last_session is not None and room.last_session.end_reason == "not_today"
    assert room.store is not None
    for session in room.store.sessions.history():
        for logged in room.store.sessions.commands(session.id):
            assert not {"painkillers_or_alcohol", "sore", "swollen_calf"} & set(logged["args"])
    body = json.loads(error.payload)
    assert body["error"]["code"] == "no_massage_today"
    assert "(left out)" in body["command"]
    # The refusal's words are the same whichever stop sign it was: they tell nothing.
    with pytest.raises(NotToday) as other:
        refuse_if_stopped(None, DayCheck(swollen_calf=True))
    assert body["error"]["message"] == other.value.message
    ours = [m for m in rig.sub.messages if not m.topic.endswith("/cmd")]
    assert any(m.topic == "ambiance/bedroom/state" for m in ours)
    words = ("pregnan", "nut", "thinner", "painkiller", "fever", "sore", "neck")
    # The refusal while getting ready: the same general words, and that the session ended.
    refusal = json.loads(refused.payload)["error"]["message"]
    assert refusal.startswith(other.value.message)
    assert not [w for w in words if w in refusal.removeprefix(other.value.message).lower()]
    for message in ours:
        text = message.payload.decode("utf-8", errors="replace")
        for fixed in (other.value.message, refusal):
            text = text.replace(json.dumps(fixed)[1:-1], "")
        text = text.lower()
        assert not [w for w in words if w in text], (message.topic, text)
    logged = caplog.text.replace(other.value.message, "")
    logged = logged.replace(refusal, "").lower()
    assert not [
        w for w in ("pregnan", "nut_allergy", "thinner", "painkiller", "fever") if w in logged
    ]
