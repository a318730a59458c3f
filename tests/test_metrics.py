"""GET /metrics: Prometheus text after a session, on virtual lights and on the Hue emulator."""

from __future__ import annotations

import re
import threading
from pathlib import Path

import httpx
import pytest

from ambiance import __version__
from ambiance.config import RoomConfig, Settings
from ambiance.infra.auth import AuthSettings
from ambiance.infra.clock import FakeClock
from ambiance.infra.metrics import COMMAND_BUCKETS, Metrics
from ambiance.infra.store import Tokens
from ambiance.service import Ambiance
from api.app import create_app
from tests.helpers import make_library
from tests.test_service_hue import GROUP_ACTION, bedroom_emulator, hue_settings

pytestmark = pytest.mark.anyio

ROOM = "/api/v1/rooms/bedroom"
NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:\\.|[^"\\])*"'
SAMPLE = re.compile(
    rf"^(?P<name>{NAME})(?P<labels>\{{(?:{LABEL}(?:,{LABEL})*)?\}})? "
    r"(?P<value>[-+]?(?:\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|Inf|NaN))$"
)
HEADER = re.compile(rf"^# (?:HELP {NAME} .*|TYPE {NAME} (?:counter|gauge|histogram|untyped))$")
PAIR = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:\\.|[^"\\])*)"')

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    """Every line is a HELP/TYPE line or `name{labels} value`; each sampled metric is typed."""
    assert text.endswith("\n")
    samples: Samples = {}
    typed: set[str] = set()
    helped: set[str] = set()
    for line in text.splitlines():
        if line.startswith("#"):
            assert HEADER.match(line), line
            (helped if line.startswith("# HELP") else typed).add(line.split()[2])
            continue
        match = SAMPLE.match(line)
        assert match, line
        labels = frozenset(PAIR.findall(match["labels"] or ""))
        key = (match["name"], labels)
        assert key not in samples, f"duplicate sample {line}"
        samples[key] = float(match["value"])
        base = re.sub(r"_(bucket|sum|count)$", "", match["name"])
        assert match["name"] in typed or base in typed, f"no TYPE before {line}"
        assert match["name"] in helped or base in helped, f"no HELP before {line}"
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum over every sample of `name` whose labels include these."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)


async def scrape(client: httpx.AsyncClient, **kwargs: object) -> Samples:
    r = await client.get("/metrics", **kwargs)  # type: ignore[arg-type]
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    return parse(r.text)


def assert_commands(samples: Samples) -> None:
    for action in ("start", "next", "stop"):
        ok = value(samples, "ambiance_commands_total", room="bedroom", action=action, outcome="ok")
        assert ok == 1, action
        assert value(samples, "ambiance_command_seconds_count", action=action) == 1
        assert value(samples, "ambiance_command_seconds_bucket", action=action, le="+Inf") == 1
        assert value(samples, "ambiance_command_seconds_sum", action=action) > 0
    conflict = {"room": "bedroom", "action": "next", "outcome": "conflict"}
    assert value(samples, "ambiance_commands_total", **conflict) == 1
    assert value(samples, "ambiance_command_seconds_count", action="pause") == 0
    assert value(samples, "ambiance_sessions_total", outcome="stopped") == 1
    for status in ("running", "paused"):
        assert value(samples, "ambiance_sessions", room="bedroom", status=status) == 0
    assert value(samples, "ambiance_device_available", room="bedroom", device="lights") == 1
    assert value(samples, "ambiance_mqtt_connected") == 0  # no broker configured
    assert value(samples, "ambiance_build_info", version=__version__) == 1


async def run_session(client: httpx.AsyncClient, **kwargs: object) -> Samples:
    """Spa mode, next, stop, and a `next` too many (409); the scrape in between."""
    assert (await client.post(f"{ROOM}/spa", **kwargs)).status_code == 201  # type: ignore[arg-type]
    during = await scrape(client, **kwargs)
    assert value(during, "ambiance_sessions", room="bedroom", status="running") == 1
    assert value(during, "ambiance_commands_total", room="bedroom", action="start", outcome="ok")
    r = await client.post(f"{ROOM}/session/next", **kwargs)  # type: ignore[arg-type]
    assert r.status_code == 200, r.text
    assert (await client.delete(f"{ROOM}/spa", **kwargs)).status_code == 200  # type: ignore[arg-type]
    r = await client.post(f"{ROOM}/session/next", **kwargs)  # type: ignore[arg-type]
    assert r.status_code == 409
    return await scrape(client, **kwargs)


async def test_metrics_after_a_session_on_virtual_lights(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, rooms={"bedroom": RoomConfig(routine="quick")})
    core = Ambiance(settings, clock=FakeClock(), library=make_library())
    async with core:
        transport = httpx.ASGITransport(app=create_app(core))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            samples = await run_session(client)
            assert_commands(samples)
            # No Hue bridge: the counters are declared but have no samples.
            assert total(samples, "ambiance_bridge_requests_total") == 0
            r = await client.get("/openapi.json")
            assert "/metrics" not in r.json()["paths"]


async def test_metrics_count_the_hue_bridges_requests(tmp_path: Path) -> None:
    emu = bedroom_emulator()
    with emu:
        core = Ambiance(
            hue_settings(tmp_path, emu.address), clock=FakeClock(), library=make_library()
        )
        async with core:
            room = core.room("bedroom")
            assert await room.lights.wait_synced(5)
            transport = httpx.ASGITransport(app=create_app(core))
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                samples = await run_session(client)
                assert await room.lights.wait_synced(5)
                samples = await scrape(client)
        assert_commands(samples)
        bridge = emu.address
        # Every request the emulator saw was counted once, by kind.
        assert total(samples, "ambiance_bridge_requests_total", bridge=bridge) == len(emu.requests)
        groups = value(
            samples,
            "ambiance_bridge_requests_total",
            bridge=bridge,
            method="PUT",
            kind="group_command",
        )
        assert groups == emu.count("PUT", GROUP_ACTION) >= 2
        reads = value(
            samples, "ambiance_bridge_requests_total", bridge=bridge, method="GET", kind="read"
        )
        assert reads == emu.count("GET") >= 1
        assert total(samples, "ambiance_bridge_errors_total") == 0


async def test_a_bridge_error_is_counted_by_its_kind(tmp_path: Path) -> None:
    from ambiance.devices.lights.hue import HueBridge, ResourceNotAvailable

    emu = bedroom_emulator()
    metrics = Metrics("test")
    with emu:
        hub = HueBridge(emu.address, "ambiance0123456789abcdef0123456789abcdef", metrics=metrics)
        try:
            with pytest.raises(ResourceNotAvailable):
                await hub.request("PUT", "/lights/99/state", {"on": True})
        finally:
            await hub.stop()
    samples = parse(metrics.render())
    bridge = emu.address
    light = {"bridge": bridge, "method": "PUT", "kind": "light_command"}
    assert value(samples, "ambiance_bridge_requests_total", **light) == 1
    error = {"bridge": bridge, "error": "ResourceNotAvailable"}
    assert value(samples, "ambiance_bridge_errors_total", **error) == 1


async def test_metrics_need_the_token_when_the_api_does(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path,
        rooms={"bedroom": RoomConfig(routine="quick")},
        auth=AuthSettings(required="always"),
    )
    token = Tokens(tmp_path).reset()
    core = Ambiance(settings, clock=FakeClock(), library=make_library())
    async with core:
        transport = httpx.ASGITransport(app=create_app(core))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            assert (await client.get("/metrics")).status_code == 401
            bad = {"Authorization": f"Bearer {token}x"}
            assert (await client.get("/metrics", headers=bad)).status_code == 401
            assert (await client.get("/metrics", params={"access_token": token})).status_code == 401
            good = {"Authorization": f"Bearer {token}"}
            assert_commands(await run_session(client, headers=good))


def test_the_registry_renders_escapes_and_buckets() -> None:
    metrics = Metrics('1.0"\\\n')
    histogram = metrics.command_seconds
    for seconds in (0.0005, 0.003, 0.003, 10.0):
        histogram.observe(seconds, action="next")
    metrics.commands.inc(room='a"b', action="next", outcome="ok")
    text = metrics.render()
    assert "_created" not in text  # no start-time series beside the counters and histograms
    samples = parse(text)
    assert value(samples, "ambiance_build_info", version='1.0\\"\\\\\\n') == 1
    assert value(samples, "ambiance_commands_total", room='a\\"b', action="next", outcome="ok")
    assert value(samples, "ambiance_command_seconds_bucket", action="next", le="0.001") == 1
    assert value(samples, "ambiance_command_seconds_bucket", action="next", le="0.005") == 3
    last = str(COMMAND_BUCKETS[-1])  # "5.0": prometheus_client writes a bound as a float
    assert value(samples, "ambiance_command_seconds_bucket", action="next", le=last) == 3
    assert value(samples, "ambiance_command_seconds_bucket", action="next", le="+Inf") == 4
    assert value(samples, "ambiance_command_seconds_count", action="next") == 4
    assert value(samples, "ambiance_command_seconds_sum", action="next") == pytest.approx(10.0065)
    with pytest.raises(ValueError):
        metrics.commands.inc(room="a")  # labels are fixed
    with pytest.raises(ValueError):
        metrics.commands.inc(-1, room="a", action="b", outcome="c")


def test_the_registry_is_thread_safe() -> None:
    metrics = Metrics()

    def work() -> None:
        for _ in range(2000):
            metrics.commands.inc(room="r", action="next", outcome="ok")
            metrics.command_seconds.observe(0.01, action="next")

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert metrics.commands.value(room="r", action="next", outcome="ok") == 16000
    assert metrics.command_seconds.count(action="next") == 16000
