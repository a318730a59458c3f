"""Run every benchmark and print one table: figure, reference measured in the same run,
target, pass/fail. `python -m bench.run [--quick] [--only NAME]`; writes bench/results.md.

Benchmarks, not tests: pytest never collects this folder (testpaths is tests/).
Everything runs on loopback; every loop is bounded in count and in time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import itertools
import json
import os
import platform
import queue
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

USER = "ambiance0123456789abcdef0123456789abcdef"
GROUP_ACTION = "/groups/1/action"


@dataclass
class Row:
    name: str
    figure: str
    reference: str
    target: str
    ok: bool | None  # None: not measured
    notes: str = ""


@dataclass
class Ctx:
    quick: bool
    tmp: Path
    rows: list[Row] = field(default_factory=list)


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    k = min(len(s) - 1, max(0, round(p / 100 * (len(s) - 1))))
    return s[k]


def ms(x: float) -> str:
    return f"{x * 1000:.1f} ms"


def rss_mb(pid: int | str = "self") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# --- helpers -------------------------------------------------------------------------


def timed_subscriber(broker: Any, *filters: str) -> Any:
    """tests.mosquitto.Subscriber that also notes each message's arrival (monotonic)."""
    from tests.mosquitto import Received, Subscriber

    class Timed(Subscriber):
        def __init__(self, *a: Any) -> None:
            super().__init__(*a)
            self.arrivals: list[float] = []

        def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
            received = Received(message.topic, bytes(message.payload), message.retain, message.qos)
            with self._changed:
                self.arrivals.append(time.monotonic())
                self.messages.append(received)
                self._changed.notify_all()

        def wait_count(self, n: int, timeout: float) -> bool:
            with self._changed:
                return self._changed.wait_for(lambda: len(self.messages) >= n, timeout)

    return Timed(broker, *filters)


def hue_room(n_lights: int) -> Any:
    from tests.hue_emulator import HueEmulator

    emu = HueEmulator(users=[USER], lights={}, groups={})
    ids = [str(i) for i in range(1, n_lights + 1)]
    for i in ids:
        emu.add_light(i, f"Light {i}", on=True, bri=200, ct=366)
    emu.add_group("1", "Bedroom", ids)
    return emu


def hue_settings(tmp: Path, address: str, routine: str, **extra: Any) -> Any:
    from ambiance.config import DevicesConfig, RoomConfig, Settings
    from ambiance.devices.lights.hue.registration import HueLightsConfig

    room_extra = extra.pop("room", {})
    return Settings(
        data_dir=tmp,
        rooms={
            "bedroom": RoomConfig(
                routine=routine,
                lights=HueLightsConfig(
                    backend="hue",
                    bridge=address,
                    group="Bedroom",
                    username=USER,
                    timeout=2.0,
                    retries=0,
                ),
                **room_extra,
            )
        },
        devices=DevicesConfig(retry_initial=0.02, retry_max=0.1, poll_interval=600),
        **extra,
    )


def mqtt_settings(broker: Any) -> Any:
    from ambiance.infra.mqtt import MqttSettings

    return MqttSettings(
        host=broker.host,
        port=broker.port,
        client_id=f"ambiance-bench-{uuid.uuid4().hex[:8]}",
        keepalive=5,
        reconnect_min=0.05,
        reconnect_max=0.2,
    )


# --- 1. tap to room ------------------------------------------------------------------


class LineProcess:
    """A helper process that reports on stdout, line by line; stopped by closing stdin."""

    def __init__(self, args: list[str], env: dict[str, str] | None = None) -> None:
        self.args = args
        self.env = env
        self.proc: subprocess.Popen[str] | None = None
        self.lines: queue.Queue[str] = queue.Queue()

    def __enter__(self) -> LineProcess:
        self.proc = subprocess.Popen(
            self.args,
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=self.env,
        )
        threading.Thread(target=self._read, daemon=True).start()
        return self

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def expect(self, pattern: str, timeout: float = 30.0) -> re.Match[str]:
        """The next line matching `pattern` (others are skipped)."""
        end = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, end - time.monotonic()))
            except queue.Empty:
                raise TimeoutError(f"{self.args[2:4]}: no line like {pattern!r}") from None
            found = re.search(pattern, line)
            if found:
                return found

    def __exit__(self, *exc: object) -> None:
        proc = self.proc
        if proc is None:
            return
        with contextlib.suppress(OSError):
            assert proc.stdin is not None
            proc.stdin.close()
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def bench_tap(ctx: Ctx) -> None:
    from tests.mosquitto import Mosquitto

    n = 20 if ctx.quick else 200
    hue_args = [sys.executable, "-m", "bench.hue_process", "4"]
    # The bridge and the service each run in a process of their own, as they do in a home
    # (a bridge is a device; the phone is another): in one process they would take turns
    # on the GIL, and the figure would measure that.
    with Mosquitto(ctx.tmp / "mosq-tap") as broker, LineProcess(hue_args) as hue:
        address = hue.expect(r"^ready (\S+)").group(1)
        sub = timed_subscriber(broker, "ambiance/phones/+/dnd", "bench/floor")
        sub.start()
        try:
            with LineProcess(_tap_service_args(ctx, address, broker)) as service:
                url = service.expect(r"running: open (http://\S+?)/?\s*$").group(1)
                taps, floor, waited = _tap_service(
                    url, hue, sub, n, _tap_floor(address, hue, sub), 120 if ctx.quick else 900
                )
        finally:
            sub.stop()
    f50, f99 = pct(floor, 50), pct(floor, 99)
    t50, t99 = pct(taps, 50), pct(taps, 99)
    ctx.rows.append(
        Row(
            "tap-to-room (p50 / p99)",
            f"{ms(t50)} / {ms(t99)}",
            f"floor {ms(f50)} / {ms(f99)}",
            "p99 < 3x floor p99",
            t99 < 3 * f99,
            f"N={len(taps)} taps; from sending POST /spa (keep-alive HTTP) to both the group "
            f"action at the bridge and DND at the phone's subscriber; floor = bare phue group "
            f"PUT + bare paho publish->receive, N={len(floor)}, taken between the taps; "
            f"service, bridge emulator and client in processes of their own; every group "
            f"command (tap or floor) >= 1.05 s after the one before (the bridge's 1/s group "
            f"limit), pacing wait not counted (mean {waited:.2f} s)",
        )
    )


def _tap_floor(address: str, hue: LineProcess, sub: Any) -> Callable[[], tuple[float, float]]:
    """One floor measurement: a bare phue group PUT, then a bare paho publish.

    Returns (the time until both arrived, the PUT's arrival at the bridge). The floor is
    taken between the taps, under the same pacing, so that both meet the same machine: a
    call after a second's idleness is slower than one right after another."""
    import phue

    bridge = phue.Bridge(ip=address, username=USER)
    body = {"on": True, "bri": 51, "ct": 455, "transitiontime": 20}

    def floor() -> tuple[float, float]:
        mark = len(sub.messages)
        t0 = time.monotonic()
        bridge.request("PUT", f"/api/{USER}{GROUP_ACTION}", body)
        sub.publish("bench/floor", json.dumps({"state": "on", "i": mark}), qos=1)
        if not sub.wait_count(mark + 1, 5):
            raise TimeoutError("floor: no message")
        put_at = float(hue.expect(r"^put (\S+)", 5).group(1))
        return max(put_at, sub.arrivals[mark]) - t0, put_at

    return floor


def _tap_service_args(ctx: Ctx, address: str, broker: Any) -> list[str]:
    data = ctx.tmp / "tap-service"
    data.mkdir(parents=True, exist_ok=True)
    config = {
        "rooms": {
            "bedroom": {
                "routine": "classic",
                "lights": {
                    "backend": "hue",
                    "bridge": address,
                    "group": "Bedroom",
                    "username": USER,
                    "timeout": 2.0,
                    "retries": 0,
                },
                "phones": [{"name": "sams-pixel"}],
            }
        },
        "mqtt": {
            "host": broker.host,
            "port": broker.port,
            "client_id": f"ambiance-bench-{uuid.uuid4().hex[:8]}",
        },
        "devices": {"retry_initial": 0.02, "retry_max": 0.1, "poll_interval": 600},
    }
    (data / "config.yaml").write_text(json.dumps(config))  # JSON is YAML
    return [
        sys.executable,
        "-m",
        "ambiance",
        "serve",
        "--port",
        "0",
        "--data-dir",
        str(data),
        "--log-level",
        "warning",
    ]


def _tap_service(
    url: str,
    hue: LineProcess,
    sub: Any,
    n: int,
    floor: Callable[[], tuple[float, float]] | None,
    deadline: float,
) -> tuple[list[float], list[float], float]:
    """Tap n times (after one warm-up), a floor measurement after each; return the taps,
    the floors and the mean pacing wait."""
    import http.client
    from urllib.parse import urlsplit

    where = urlsplit(url)
    conn = http.client.HTTPConnection(where.hostname or "127.0.0.1", where.port, timeout=10)

    def call(method: str, path: str) -> None:
        conn.request(method, path, body=b"", headers={"Content-Length": "0"})
        reply = conn.getresponse()
        body = reply.read()
        if reply.status >= 300:
            raise RuntimeError(f"{method} {path}: {reply.status} {body[:200]!r}")

    out: list[float] = []
    floors: list[float] = []
    waits: list[float] = []
    last_put: float | None = None
    end = time.monotonic() + deadline

    def pace() -> None:
        if last_put is not None:
            wait = last_put + 1.05 - time.monotonic()
            if wait > 0:
                waits.append(wait)
                time.sleep(wait)  # the bridge's limit, not a wait for an event

    try:
        for i in range(n + 1):  # the first tap warms up (connections, imports): not counted
            if time.monotonic() > end:
                break
            pace()
            mark = len(sub.messages)
            t0 = time.monotonic()
            call("POST", "/api/v1/rooms/bedroom/spa")  # answers once the lights match
            last_put = float(hue.expect(r"^put (\S+)", 5).group(1))
            if not sub.wait_count(mark + 1, 5):
                raise TimeoutError("tap: the phone got no do-not-disturb")
            if i > 0:
                out.append(max(last_put, sub.arrivals[mark]) - t0)
            mark = len(sub.messages)
            call("DELETE", "/api/v1/rooms/bedroom/spa")  # answers once the room is back
            if not sub.wait_count(mark + 1, 5):
                raise TimeoutError("tap: the phone got no end of do-not-disturb")
            if floor is not None:
                pace()
                took, last_put = floor()
                if i > 0:
                    floors.append(took)
    finally:
        conn.close()
    return out, floors, (sum(waits) / len(waits) if waits else 0.0)


# --- 2. bridge economy ---------------------------------------------------------------


def bench_economy(ctx: Ctx) -> None:
    asyncio.run(_economy(ctx))


async def _economy(ctx: Ctx) -> None:
    from ambiance.infra.clock import FakeClock
    from ambiance.service import Ambiance

    with hue_room(12) as emu:
        clock = FakeClock()
        core = Ambiance(hue_settings(ctx.tmp / "eco", emu.address, "classic"), clock=clock)
        async with core:
            room = core.room("bedroom")
            await room.lights.wait_synced(5)
            emu.clear_requests()
            changes = 0
            session = room.start_spa()
            await room.settle(10)
            changes += 1
            for _ in range(50):
                if room.session is None or room.session.ended:
                    break
                s = room.session
                if s.deadline is None:
                    room.next()
                else:
                    clock.advance(s.deadline - clock.now() + 0.001)
                await asyncio.sleep(0)
                changes += 1 if room.session is not None and not room.session.ended else 0
                await room.settle(10)
            del session
            group_puts = [
                r for r in emu.requests if r.method == "PUT" and r.resource == GROUP_ACTION
            ]
            light_puts = [
                r for r in emu.requests if r.method == "PUT" and r.resource.startswith("/lights/")
            ]
            naive = 12 * changes
            ctx.rows.append(
                Row(
                    "bridge economy: classic routine, 12 lights",
                    f"{len(group_puts)} group PUTs for {changes} changes",
                    f"naive {naive} light PUTs",
                    "1 group cmd/change, >= 12x fewer",
                    len(group_puts) == changes and naive >= 12 * len(group_puts),
                    f"restore at the end: {len(light_puts)} light PUTs (not counted above)",
                )
            )

            # 20 rapid "next" taps
            room.start_spa()
            await room.settle(10)
            emu.clear_requests()
            for _ in range(20):
                if room.session is None or room.session.ended:
                    break
                room.next() if room.session.index < len(
                    room.session.routine.stages
                ) - 2 else room.previous()
                await asyncio.sleep(0.05)
            await room.settle(15)
            times = [r.at for r in emu.requests if r.method == "PUT" and r.resource == GROUP_ACTION]
            gaps = [b - a for a, b in itertools.pairwise(times)]
            violations = sum(1 for g in gaps if g < 1.0)
            ctx.rows.append(
                Row(
                    "bridge economy: 20 rapid 'next' taps",
                    f"{violations} violations",
                    f"{len(times)} group PUTs, min gap {min(gaps) if gaps else float('nan'):.3f} s",
                    "0 group cmds < 1 s apart",
                    violations == 0,
                    "taps 50 ms apart; gaps from the emulator's arrival times",
                )
            )
            room.stop_session()
            await room.settle(10)


# --- 3. scale ------------------------------------------------------------------------


def bench_scale(ctx: Ctx) -> None:
    from tests.mosquitto import Mosquitto

    with Mosquitto(ctx.tmp / "mosq-scale") as broker:
        # The subscriber counting the state messages runs in a process of its own: in ours
        # it would compete with the service for the GIL and slow down what is measured.
        counter = subprocess.Popen(
            [sys.executable, "-m", "bench.counter", broker.host, str(broker.port), "ambiance/#"],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert counter.stdout is not None
            if counter.stdout.readline().strip() != "ready":
                raise RuntimeError("the message counter did not subscribe")
            asyncio.run(_scale(ctx, broker, counter))
        finally:
            if counter.poll() is None:
                counter.kill()
                counter.wait()


async def _scale(ctx: Ctx, broker: Any, counter: subprocess.Popen[str]) -> None:
    from ambiance.config import DevicesConfig, RoomConfig, Settings
    from ambiance.core.scenes import Guidance, Library, LightsSpec, Routine, Scene, Stage
    from ambiance.infra.memory import freeze_startup_objects
    from ambiance.service import Ambiance

    n_rooms = 100 if ctx.quick else 1000
    run_for = 8.0 if ctx.quick else 20.0
    scenes = {
        "warm": Scene(name="warm", lights=LightsSpec(kelvin=2700, brightness=40, transition=1)),
        "dim": Scene(name="dim", lights=LightsSpec(kelvin=2200, brightness=20, transition=2)),
    }
    g = Guidance(summary="do this")
    durations = [2, 3, 4, 5, 2, 3, 4, 5, 2, 3]
    stages = [
        Stage(name=f"s{i}", scene="warm" if i % 2 else "dim", duration=d, guidance=g)
        for i, d in enumerate(durations)
    ]
    library = Library(
        scenes=scenes,
        routines={"bench": Routine(name="bench", stages=stages, restore_transition=1)},
    )
    settings = Settings(
        data_dir=ctx.tmp / "scale",
        rooms={f"room-{i:04d}": RoomConfig(routine="bench") for i in range(n_rooms)},
        devices=DevicesConfig(poll_interval=600),
        mqtt=mqtt_settings(broker),
    )
    lateness: list[float] = []
    lights_late: list[float] = []  # from the deadline to the room's lights changed
    due: dict[str, float] = {}
    rss0 = rss_mb()
    core = Ambiance(settings, library=library)

    def on_event(e: Any) -> None:
        if e.kind == "stage.changed" and e.data.get("reason") == "timer":
            lateness.append(time.time() - e.at)
            due[e.room] = e.at
        elif e.kind == "lights.changed" and e.room in due:
            lights_late.append(time.time() - due.pop(e.room))

    try:
        async with core:
            await core.mqtt.wait_ready(10)
            freeze_startup_objects()  # as `ambiance serve` does once it is up
            core.bus.subscribe(on_event)
            c0 = resource.getrusage(resource.RUSAGE_SELF)
            w0 = time.monotonic()
            for room in core.rooms.values():
                room.start_spa()
            start_span = time.monotonic() - w0
            await asyncio.sleep(run_for)
            c1 = resource.getrusage(resource.RUSAGE_SELF)
            wall = time.monotonic() - w0
            rss = rss_mb()
            for room in core.rooms.values():
                if room.session is not None and not room.session.ended:
                    room.stop_session()
    finally:
        # Closing its stdin makes it print its count.
        out = (await asyncio.to_thread(counter.communicate, "", 30))[0]
    msgs = int(out.strip() or 0)
    cpu = (c1.ru_utime + c1.ru_stime) - (c0.ru_utime + c0.ru_stime)
    p50, p99 = pct(lateness, 50), pct(lateness, 99)
    ctx.rows.append(
        Row(
            f"scale: {n_rooms} rooms, stage lateness (p50 / p99)",
            f"{ms(p50)} / {ms(p99)}",
            f"{len(lateness)} timed stage changes in {wall:.1f} s",
            "p99 < 50 ms",
            p99 < 0.050,
            f"lateness = the stage change's event after its deadline; the room's lights changed"
            f" p50 {ms(pct(lights_late, 50))} / p99 {ms(pct(lights_late, 99))} after the deadline;"
            f" all {n_rooms} sessions started at once (their deadlines fall within"
            f" {ms(start_span)}); CPU {cpu:.1f} s in {wall:.1f} s wall ({100 * cpu / wall:.0f}%);"
            f" {msgs} MQTT messages seen by a subscriber (its own process)",
        )
    )
    ctx.rows.append(
        Row(
            f"scale: {n_rooms} rooms, RSS",
            f"{rss:.0f} MB",
            f"{rss0:.0f} MB before building the service",
            "< 250 MB",
            rss < 250,
            "VmRSS of the whole benchmark process (includes earlier benchmarks' imports)",
        )
    )


# --- 4. API under load ---------------------------------------------------------------


def bench_api(ctx: Ctx) -> None:
    asyncio.run(_api(ctx))


async def _load(url: str, path: str, seconds: float, conns: int) -> tuple[float, int, int]:
    limits = httpx.Limits(max_connections=conns, max_keepalive_connections=conns)
    ok = errors = 0
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=10) as client:
        end = time.monotonic() + seconds

        async def worker() -> None:
            nonlocal ok, errors
            while time.monotonic() < end:
                try:
                    r = await client.get(path)
                    if r.status_code == 200:
                        ok += 1
                    else:
                        errors += 1
                except httpx.HTTPError:
                    errors += 1

        t0 = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(conns)))
        return ok / (time.monotonic() - t0), ok, errors


async def _api(ctx: Ctx) -> None:
    from fastapi import FastAPI

    from ambiance.config import Settings
    from ambiance.service import Ambiance
    from api.app import create_app
    from tests.http_server import serve

    seconds = 2.0 if ctx.quick else 5.0
    core = Ambiance(Settings(data_dir=ctx.tmp / "api"))
    async with core:
        core.room("bedroom").start_spa()
        payload = core.room("bedroom").view().model_dump(mode="json")
        sample = json.loads(json.dumps(payload, default=str))
        bare = FastAPI()

        @bare.get("/room")
        async def room() -> Any:
            return sample

        async with serve(create_app(core)) as url, serve(bare) as bare_url:
            size = len((await httpx.AsyncClient().get(f"{url}/api/v1/rooms/bedroom")).content)
            bare_size = len((await httpx.AsyncClient().get(f"{bare_url}/room")).content)
            rps, _n, err = await _load(url, "/api/v1/rooms/bedroom", seconds, 50)
            brps, _bn, berr = await _load(bare_url, "/room", seconds, 50)
    ctx.rows.append(
        Row(
            "API: GET /rooms/bedroom, 50 conns",
            f"{rps:.0f} req/s, {err} errors",
            f"bare FastAPI {brps:.0f} req/s, {berr} errors",
            ">= 0.5x bare, 0 errors",
            rps >= 0.5 * brps and err == 0,
            f"{seconds:.0f} s each; bodies {size} B vs {bare_size} B; client and server share one event loop",
        )
    )


# --- 5. SSE --------------------------------------------------------------------------


def bench_sse(ctx: Ctx) -> None:
    asyncio.run(_sse(ctx))


async def _sse(ctx: Ctx) -> None:
    from ambiance.config import Settings
    from ambiance.service import Ambiance
    from api.app import create_app
    from tests.http_server import serve

    n = 50 if ctx.quick else 200
    rounds = 3 if ctx.quick else 5
    core = Ambiance(Settings(data_dir=ctx.tmp / "sse"))
    delays: list[float] = []
    received = [0] * n
    stamps: list[list[float]] = [[] for _ in range(n)]
    async with core:
        room = core.room("bedroom")
        room.start_spa()
        await room.settle(5)
        async with serve(create_app(core)) as url:
            limits = httpx.Limits(max_connections=n + 10)
            async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:
                ready = asyncio.Semaphore(0)

                async def listen(i: int) -> None:
                    async with client.stream("GET", "/api/v1/events") as r:
                        first = True
                        async for line in r.aiter_lines():
                            if line.startswith("event: room"):
                                if first:
                                    first = False
                                    ready.release()
                                    continue
                                received[i] += 1
                                stamps[i].append(time.monotonic())

                tasks = [asyncio.create_task(listen(i)) for i in range(n)]
                for _ in range(n):
                    await asyncio.wait_for(ready.acquire(), 30)
                await asyncio.sleep(0.5)
                for _ in range(rounds):
                    await room.settle(5)
                    await asyncio.sleep(0.3)
                    marks = [len(s) for s in stamps]
                    t0 = time.monotonic()
                    room.next()
                    end = time.monotonic() + 5
                    while time.monotonic() < end and any(
                        len(stamps[i]) <= marks[i] for i in range(n)
                    ):
                        await asyncio.sleep(0.005)
                    for i in range(n):
                        if len(stamps[i]) > marks[i]:
                            delays.append(stamps[i][marks[i]] - t0)
                missed = n * rounds - len(delays)
                for t in tasks:
                    t.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
    p50, p99 = pct(delays, 50), pct(delays, 99)
    ctx.rows.append(
        Row(
            f"SSE: {n} subscribers, stage change (p50 / p99)",
            f"{ms(p50)} / {ms(p99)}",
            f"{len(delays)} deliveries, {missed} missed",
            "p99 < 50 ms, all reached",
            p99 < 0.050 and missed == 0,
            f"{rounds} stage changes ('next'); clients in the server's process and loop; 5 ms polling granularity",
        )
    )


# --- 6. start to ready ---------------------------------------------------------------


def bench_start(ctx: Ctx) -> None:
    runs = 2 if ctx.quick else 5
    times, rsses = [], []
    for i in range(runs):
        data = ctx.tmp / f"start-{i}"
        env = {**os.environ, "AMBIANCE_CONFIG": ""}
        t0 = time.monotonic()
        proc = subprocess.Popen(
            [sys.executable, "-m", "ambiance", "serve", "--port", "0", "--data-dir", str(data)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            cwd=ROOT,
        )
        try:
            url = None
            assert proc.stdout is not None
            end = time.monotonic() + 30
            while time.monotonic() < end:
                line = proc.stdout.readline()
                if not line:
                    break
                m = re.search(r"running: open (http://\S+?)/?\s*$", line)
                if m:
                    url = m.group(1)
                    break
            if url is None:
                raise RuntimeError("ambiance serve printed no URL")
            threading.Thread(target=proc.stdout.read, daemon=True).start()
            while time.monotonic() < end:
                try:
                    if httpx.get(f"{url}/api/v1/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.01)
            times.append(time.monotonic() - t0)
            time.sleep(1.0)
            rsses.append(rss_mb(proc.pid))
        finally:
            proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(10)
            if proc.poll() is None:
                proc.kill()
    t0 = time.monotonic()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    bare_py = time.monotonic() - t0
    t0 = time.monotonic()
    subprocess.run([sys.executable, "-c", "import fastapi, uvicorn"], check=True)
    bare_imp = time.monotonic() - t0
    ctx.rows.append(
        Row(
            "start to ready (median)",
            f"{statistics.median(times):.2f} s",
            f"bare python {bare_py:.2f} s; import fastapi+uvicorn {bare_imp:.2f} s",
            "(no target)",
            None,
            f"{runs} runs: {', '.join(f'{t:.2f}' for t in times)} s; `ambiance serve --port 0` -> /api/v1/health 200",
        )
    )
    ctx.rows.append(
        Row(
            "idle RSS of `ambiance serve`",
            f"{statistics.median(rsses):.0f} MB",
            "",
            "(no target)",
            None,
            "VmRSS 1 s after ready, default config (1 room, 4 virtual lights)",
        )
    )


BENCHES: dict[str, Callable[[Ctx], None]] = {
    "tap": bench_tap,
    "economy": bench_economy,
    "scale": bench_scale,
    "api": bench_api,
    "sse": bench_sse,
    "start": bench_start,
}


def machine() -> list[str]:
    cpu = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    return [
        f"- CPU: {cpu}, {os.cpu_count()} cores (affinity: {len(os.sched_getaffinity(0))})",
        f"- Memory: {mem}",
        f"- Python: {platform.python_version()} ({platform.python_implementation()})",
        f"- OS: {platform.platform()}",
        f"- Date: {datetime.datetime.now(datetime.UTC).isoformat(timespec='seconds')}",
    ]


def table(rows: list[Row]) -> str:
    out = [
        "| benchmark | figure | reference (same run) | target | result | notes |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        verdict = "n/a" if r.ok is None else ("PASS" if r.ok else "FAIL")
        out.append(
            f"| {r.name} | {r.figure} | {r.reference} | {r.target} | {verdict} | {r.notes} |"
        )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small counts, for a smoke run")
    parser.add_argument(
        "--only", action="append", choices=list(BENCHES), help="run only this one (repeatable)"
    )
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results.md")
    args = parser.parse_args(argv)
    import logging

    logging.basicConfig(level=logging.ERROR)
    with tempfile.TemporaryDirectory(prefix="ambiance-bench-") as tmp:
        ctx = Ctx(quick=args.quick, tmp=Path(tmp))
        for name, fn in BENCHES.items():
            if args.only and name not in args.only:
                continue
            print(f"== {name} ...", flush=True)
            t0 = time.monotonic()
            try:
                fn(ctx)
            except Exception as exc:  # one broken benchmark must not hide the others
                ctx.rows.append(
                    Row(name, "ERROR", "", "", False, f"{type(exc).__name__}: {exc}"[:300])
                )
            print(f"   {time.monotonic() - t0:.1f} s", flush=True)
    text = table(ctx.rows)
    print()
    print(text)
    mode = "--quick" if args.quick else "full"
    args.out.write_text(
        f"# ambiance benchmarks\n\n`python -m bench.run {'--quick' if args.quick else ''}`"
        f" ({mode} run{', only ' + ', '.join(args.only) if args.only else ''})\n\n"
        + "\n".join(machine())
        + "\n\n"
        + text
        + "\n"
    )
    print(f"\nwritten: {args.out}")
    return 0 if all(r.ok is not False for r in ctx.rows) else 1


if __name__ == "__main__":
    sys.exit(main())
