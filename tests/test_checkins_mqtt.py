"""Pressure check-ins over MQTT against a real Mosquitto: the open check-in in the room's
retained state (for a speaker to say), answers on the command topic and from Home
Assistant's buttons, and the refusals on the error topic. Nothing sleeps: every wait is
for a message, with a timeout."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from ambiance.config import RoomConfig, Settings
from ambiance.core.checkins import CHANGE_AFTER, FIRST_AFTER, PROMPTS
from ambiance.core.profiles import Profile
from ambiance.infra.clock import FakeClock
from ambiance.service import Ambiance
from tests.mosquitto import Mosquitto, Received, Subscriber, async_read_retained
from tests.mqtt_fixtures import mqtt_settings
from tests.test_discovery import render

pytestmark = pytest.mark.anyio

STATE = "ambiance/bedroom/state"
CMD = "ambiance/bedroom/cmd"
ERROR = "ambiance/bedroom/error"


@dataclass
class Rig:
    core: Ambiance
    clock: FakeClock
    broker: Mosquitto
    sub: Subscriber
    sent: list[Received] = field(default_factory=list)  # what had come by the last command

    async def state(self, check: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        """The first state message, since the last command, that passes `check`."""
        seen = {id(m) for m in self.sent}

        def fits(m: Received) -> bool:
            return id(m) not in seen and bool(m.payload) and check(json.loads(m.payload))

        message = await self.sub.async_wait_for(STATE, predicate=fits)
        return dict(json.loads(message.payload))

    def command(self, payload: dict[str, Any] | str, topic: str = CMD) -> None:
        self.sent = list(self.sub.messages)
        text = payload if isinstance(payload, str) else json.dumps(payload)
        self.sub.publish(topic, text)

    async def error(self) -> dict[str, Any]:
        seen = {id(m) for m in self.sent}
        message = await self.sub.async_wait_for(ERROR, predicate=lambda m: id(m) not in seen)
        return dict(json.loads(message.payload)["error"])


@pytest.fixture
async def rig(mosquitto: Mosquitto, tmp_path: Path) -> AsyncIterator[Rig]:
    settings = Settings(
        data_dir=tmp_path,
        mqtt=mqtt_settings(mosquitto),
        rooms={"bedroom": RoomConfig(routine="classic")},
    )
    clock = FakeClock()
    with Subscriber(mosquitto, "ambiance/#", "homeassistant/#") as sub:
        async with Ambiance(settings, clock=clock) as core:  # the built-in routines
            assert await core.mqtt.wait_ready(5)
            core.profiles.create(Profile(name="sam", pressure="medium"))
            yield Rig(core, clock, mosquitto, sub)


def is_open(state: dict[str, Any]) -> bool:
    return state["checkin"] is not None and state["checkin"]["answered"] is None


async def test_the_open_check_in_is_in_the_retained_state_and_answered_over_mqtt(
    rig: Rig,
) -> None:
    rig.command({"action": "start", "profile": "sam"})
    await rig.state(lambda s: s["stage"] == "prepare")
    rig.command("next")
    state = await rig.state(lambda s: s["stage"] == "effleurage")
    assert state["checkin"] is None

    rig.clock.advance(FIRST_AFTER)
    state = await rig.state(is_open)
    checkin = state["checkin"]
    assert (checkin["id"], checkin["stage"], checkin["prompt"]) == (
        "effleurage-1",
        "effleurage",
        PROMPTS["first"],
    )
    # Retained: a speaker that comes along now hears it too.
    retained = await async_read_retained(rig.broker, STATE)
    assert is_open(json.loads(retained[STATE]))

    # A bad answer, and an answer to another check-in: said on the error topic.
    rig.command({"action": "checkin", "answer": "harder"})
    error = await rig.error()
    assert error["code"] == "invalid_input" and "answer" in error["message"]
    rig.command({"action": "checkin", "answer": "same", "id": "friction-1"})
    error = await rig.error()
    assert error["code"] == "no_checkin_open"
    assert "'friction-1' is not the one open: 'effleurage-1' is" in error["message"]

    rig.command({"action": "checkin", "answer": "firmer"})
    state = await rig.state(lambda s: s["checkin"] is not None and s["checkin"]["answered"])
    assert state["checkin"]["answered"] == "firmer"
    session = rig.core.room("bedroom").session
    assert session is not None and session.checkins.shown("effleurage") == "firm"
    commands = rig.core.store.sessions.commands(session.id)
    assert (commands[-1]["action"], commands[-1]["args"]) == ("checkin", {"answer": "firmer"})

    # Answered: nothing is open, and a second answer is refused.
    rig.command({"action": "checkin", "answer": "softer"})
    error = await rig.error()
    assert error["code"] == "no_checkin_open" and "was answered (firmer)" in error["message"]

    # The stage ends: the check-in goes from the state.
    rig.command("next")
    state = await rig.state(lambda s: s["stage"] == "petrissage")
    assert state["checkin"] is None


async def test_home_assistant_says_the_prompt_and_its_buttons_answer(rig: Rig) -> None:
    def config(component: str, object_id: str) -> dict[str, Any]:
        topic = f"homeassistant/{component}/ambiance_bedroom/{object_id}/config"
        message = rig.sub.matching(topic)[-1]
        return dict(json.loads(message.payload))

    await rig.sub.async_wait_for("homeassistant/sensor/ambiance_bedroom/checkin/config")
    sensor = config("sensor", "checkin")
    assert (sensor["name"], sensor["state_topic"]) == ("Check-in", STATE)
    names = {}
    for answer in ("softer", "same", "firmer", "too_much"):
        await rig.sub.async_wait_for(
            f"homeassistant/button/ambiance_bedroom/checkin_{answer}/config"
        )
        button = config("button", f"checkin_{answer}")
        assert button["command_topic"] == CMD
        assert json.loads(button["payload_press"]) == {"action": "checkin", "answer": answer}
        names[answer] = button["name"]
    assert names == {
        "softer": "Check-in: softer",
        "same": "Check-in: same",
        "firmer": "Check-in: firmer",
        "too_much": "Check-in: too much",
    }

    rig.command({"action": "start", "profile": "sam"})
    idle = await rig.state(lambda s: s["stage"] == "prepare")
    assert render(sensor["value_template"], value_json=idle) == "None"
    rig.command({"action": "goto", "stage": "petrissage"})
    await rig.state(lambda s: s["stage"] == "petrissage")
    rig.clock.advance(CHANGE_AFTER)
    asked = await rig.state(is_open)
    assert render(sensor["value_template"], value_json=asked) == PROMPTS["change"]

    rig.command(config("button", "checkin_too_much")["payload_press"])
    answered = await rig.state(lambda s: s["checkin"] is not None and s["checkin"]["answered"])
    assert answered["checkin"]["answered"] == "too_much"
    assert render(sensor["value_template"], value_json=answered) == "None"
    view = rig.core.room("bedroom").view()
    assert view.session is not None
    assert (view.session.stage.guidance.pressure or "").startswith("Ease off now")
