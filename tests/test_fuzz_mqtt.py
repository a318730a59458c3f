"""Fuzzing the MQTT door: whatever arrives on `<base>/<room>/cmd`, only AmbianceErrors come
out, the room stays consistent, and the service keeps answering.

In-process: hypothesis-generated payloads (random bytes, JSON of any shape, huge strings,
deep nesting, commands of the right shape with wrong types, and valid commands, so that
the room really moves) go through `parse_command` and `run_command` on a real room.
End to end: a seeded burst of bad payloads through a real Mosquitto; each gets its error
message, and then the service still carries out a valid command.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ambiance.config import RoomConfig, Settings
from ambiance.core import commands
from ambiance.core.profiles import Profile
from ambiance.core.room import Room
from ambiance.core.views import RoomView
from ambiance.doors.mqtt_api import COMMAND_LIMIT, parse_command, run_command
from ambiance.errors import AmbianceError, InvalidInput
from ambiance.infra.clock import FakeClock
from ambiance.service import Ambiance
from tests.helpers import make_library
from tests.mosquitto import Mosquitto, Received, Subscriber
from tests.mqtt_fixtures import mqtt_settings

pytestmark = pytest.mark.anyio

STAGES = ["prepare", "a", "b", "c", "nowhere", "", "A", "a" * 65]
SCENES = ["warm", "dim", "dark", "disco", ""]
ALL_ACTIONS = commands.names()
ROUTINES = ["quick", "timed", "classic", None, ""]

# --- strategies ----------------------------------------------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=50)
)
any_json = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=30,
)


def _dump(value: Any) -> bytes:
    return json.dumps(value).encode()  # NaN and Infinity as Python writes them


def _nested(depth: int, kind: str) -> bytes:
    if kind == "list":
        return b"[" * depth + b"]" * depth
    return b'{"a":' * depth + b"1" + b"}" * depth


valid_commands = st.one_of(
    st.sampled_from(["start", "stop", "pause", "resume", "toggle_pause", "next", "previous"]),
    st.builds(
        lambda r, p: {"action": "start", "routine": r, "profile": p},
        st.sampled_from(ROUTINES),
        st.sampled_from([None, "sam", "nobody", "Bad Name"]),
    ),
    st.builds(lambda s: {"action": "goto", "stage": s}, st.sampled_from(STAGES)),
    st.builds(
        lambda s, r: {"action": "set_stage", "stage": s, "remaining": r},
        st.sampled_from(STAGES),
        st.none() | st.floats(min_value=-10, max_value=100_000),
    ),
    st.builds(
        lambda s: {"action": "extend", "seconds": s},
        st.floats(min_value=-10, max_value=5000, allow_nan=False),
    ),
    st.builds(lambda s: {"action": "scene", "scene": s}, st.sampled_from(SCENES)),
).map(lambda c: c.encode() if isinstance(c, str) else _dump(c))

wrong_types = st.fixed_dictionaries(
    {"action": st.sampled_from([*ALL_ACTIONS, "dance", ""]) | any_json},
    optional={
        key: any_json
        for key in ("stage", "scene", "seconds", "remaining", "routine", "profile", "id", "x")
    },
).map(_dump)

payloads = st.one_of(
    st.binary(max_size=2000),
    any_json.map(_dump),
    st.text(max_size=200).map(str.encode),
    st.integers(min_value=0, max_value=3 * COMMAND_LIMIT).map(lambda n: b'"' + b"x" * n + b'"'),
    st.builds(
        lambda n, action: _dump({"action": action, "id": "x" * n}),
        st.integers(min_value=0, max_value=COMMAND_LIMIT),
        st.sampled_from(ALL_ACTIONS),
    ),
    st.builds(
        _nested, st.integers(min_value=1, max_value=50_000), st.sampled_from(["list", "dict"])
    ),
    st.builds(
        lambda depth: (
            _dump({"action": "goto", "stage": "a", "id": None})[:-1]
            + b', "x": '
            + _nested(depth, "list")
            + b"}"
        ),
        st.integers(min_value=1, max_value=3000),
    ),
    st.sampled_from([b"", b" ", b"null", b"1e400", b"-0", b"9" * 5000, b"NaN", b'{"action"}']),
    wrong_types,
    valid_commands,
    valid_commands,  # twice as often: the room should really move between the junk
)


# --- in-process ----------------------------------------------------------------------


@pytest.fixture
async def core(tmp_path: Path) -> AsyncIterator[Ambiance]:
    settings_ = Settings(data_dir=tmp_path, rooms={"bedroom": RoomConfig(routine="quick")})
    service = Ambiance(settings_, clock=FakeClock(), library=make_library())
    async with service:
        service.profiles.create(Profile(name="sam"))
        yield service


def assert_consistent(room: Room) -> None:
    RoomView.model_validate(room.view().model_dump())  # the REST view still holds together
    message = room.state_message().model_dump(mode="json")
    json.dumps(message, allow_nan=False)
    session = room.session
    if session is None:
        assert message["status"] == "idle"
        assert room.scene is None or isinstance(room.scene, str)
        return
    assert session.status.value in ("running", "paused")
    assert 0 <= session.index < len(session.routine.stages)
    assert session.stage.name == session.routine.stages[session.index].name
    remaining = session.stage_remaining(room.clock.now())
    assert remaining is None or (math.isfinite(remaining) and remaining >= 0)
    store = room.store
    assert store is not None
    record = store.sessions.get(session.id)
    assert record is not None
    assert record.status == session.status.value


def feed(room: Room, payload: bytes) -> AmbianceError | None:
    """A payload as the door handles it; anything but an AmbianceError fails the test."""
    try:
        run_command(room, parse_command(payload))
    except AmbianceError as exc:
        assert exc.message
        return exc
    return None


async def test_any_payload_gives_an_ambiance_error_or_a_change(core: Ambiance) -> None:
    room = core.room("bedroom")
    clock = core.clock
    assert isinstance(clock, FakeClock)

    @settings(
        max_examples=1500,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(payload=payloads, advance=st.sampled_from([0, 0, 0, 1, 30, 200, 5000]))
    def run(payload: bytes, advance: float) -> None:
        error = feed(room, payload)
        if len(payload) > COMMAND_LIMIT:
            assert isinstance(error, InvalidInput)
            assert "too large" in error.message
        clock.advance(advance)  # stages run out, sessions end by themselves
        assert_consistent(room)

    run()
    # And it still does what it is told.
    if room.session is not None:
        assert feed(room, b"stop") is None
    assert feed(room, b'{"action": "start", "routine": "timed"}') is None
    assert room.session is not None and room.session.stage.name == "a"
    assert_consistent(room)


# --- end to end through a real broker --------------------------------------------------


def _random_bad_payloads(count: int, seed: int = 20261124) -> list[bytes]:
    """Seeded junk of every kind, kept only where parse_command itself says no."""
    rng = random.Random(seed)

    def junk_json(depth: int = 0) -> Any:
        pick = rng.randrange(8 if depth < 3 else 5)
        if pick == 0:
            return None
        if pick == 1:
            return rng.random() < 0.5
        if pick == 2:
            return rng.choice([0, -1, 10**40, 1.5, float("inf"), float("nan"), 1e308])
        if pick in (3, 4):
            return "".join(chr(rng.randrange(1, 0x2FFF)) for _ in range(rng.randrange(30)))
        if pick == 5:
            return [junk_json(depth + 1) for _ in range(rng.randrange(4))]
        return {str(junk_json(depth + 1))[:10]: junk_json(depth + 1) for _ in range(3)}

    makers: list[Callable[[], bytes]] = [
        lambda: rng.randbytes(rng.randrange(1, 300)),
        lambda: _dump(junk_json()),
        lambda: b'"' + b"y" * rng.randrange(COMMAND_LIMIT, 3 * COMMAND_LIMIT) + b'"',
        lambda: _nested(rng.randrange(1_000, 20_000), rng.choice(["list", "dict"])),
        lambda: _dump({"action": rng.choice([*ALL_ACTIONS, "dance"]), "stage": junk_json(2)}),
        lambda: _dump({"action": "extend", "seconds": rng.choice(["60", -5, 1e9, None, [1]])}),
        lambda: _dump({"action": "goto", "stage": "nowhere"}),  # parses; the room says no
    ]
    found: list[bytes] = []
    while len(found) < count:
        payload = rng.choice(makers)()
        try:
            command = parse_command(payload)
        except InvalidInput:
            found.append(payload)
            continue
        if getattr(command, "stage", None) == "nowhere":
            found.append(payload)  # a stage_not_found from the room, not from parsing
    return found


async def test_a_burst_of_junk_over_the_broker(mosquitto: Mosquitto, tmp_path: Path) -> None:
    bad = _random_bad_payloads(200)
    settings_ = Settings(
        data_dir=tmp_path,
        mqtt=mqtt_settings(mosquitto),
        rooms={"bedroom": RoomConfig(routine="quick")},
    )
    with Subscriber(mosquitto, "ambiance/#") as sub:
        core = Ambiance(settings_, clock=FakeClock(), library=make_library())
        async with core:
            assert await core.mqtt.wait_ready(5)
            for payload in bad:
                sub.publish("ambiance/bedroom/cmd", payload)
            # The door handles commands in order: an error with this id comes after the rest.
            sub.publish("ambiance/bedroom/cmd", b'{"action": "dance", "id": "last"}')

            def is_last(m: Received) -> bool:
                return bool(json.loads(m.payload)["id"] == "last")

            await sub.async_wait_for("ambiance/bedroom/error", predicate=is_last, timeout=30)
            errors = [json.loads(m.payload) for m in sub.matching("ambiance/bedroom/error")]
            assert len(errors) == len(bad) + 1
            codes = {e["error"]["code"] for e in errors}
            assert codes <= {"invalid_input", "stage_not_found", "conflict"}, codes
            for error in errors:
                assert error["room"] == "bedroom"
                assert len(error["command"]) <= 200
            assert core.room("bedroom").session is None

            sub.publish("ambiance/bedroom/cmd", b'{"action": "start", "routine": "timed"}')

            def running(m: Received) -> bool:
                body = json.loads(m.payload)
                return bool(body["status"] == "running" and body["stage"] == "a")

            await sub.async_wait_for("ambiance/bedroom/state", predicate=running, timeout=10)
