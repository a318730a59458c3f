"""Where a tap's time goes: `python -m bench.tap_profile [--taps N]`.

Runs the tap-to-room benchmark with the service started through this module, which marks
(time.monotonic, shared by every process) when the request reaches `Room.start_spa`, when
the lights' snapshot and the group command begin and end; prints the median of each mark
after the client sent POST /spa. This is the profile behind bench/results.md's tap row.
"""

from __future__ import annotations

import functools
import http.client
import json
import runpy
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

MARKS = ("start>", "start<", "snapshot>", "snapshot<", "apply>", "apply<")


def _serve_with_marks(out: str, argv: list[str]) -> None:
    """Run `ambiance` (argv) with marks around the tap's phases; write them on SIGTERM."""
    from ambiance.core import room
    from ambiance.devices.lights import hue

    marks: list[tuple[str, float]] = []

    def timed_async(cls: Any, name: str, label: str) -> None:
        real: Callable[..., Awaitable[Any]] = getattr(cls, name)

        @functools.wraps(real)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            marks.append((label + ">", time.monotonic()))
            try:
                return await real(*args, **kwargs)
            finally:
                marks.append((label + "<", time.monotonic()))

        setattr(cls, name, wrapper)

    real_start = room.Room.start_spa

    @functools.wraps(real_start)
    def start_spa(self: Any, *args: Any, **kwargs: Any) -> Any:
        marks.append(("start>", time.monotonic()))
        try:
            return real_start(self, *args, **kwargs)
        finally:
            marks.append(("start<", time.monotonic()))

    room.Room.start_spa = start_spa  # type: ignore[method-assign]
    timed_async(hue.HueLights, "snapshot", "snapshot")
    timed_async(hue.HueLights, "apply", "apply")

    def dump(*_: object) -> None:
        Path(out).write_text(json.dumps(marks))
        sys.exit(0)

    signal.signal(signal.SIGTERM, dump)
    sys.argv = ["ambiance", *argv]
    runpy.run_module("ambiance", run_name="__main__")


def main() -> int:
    if len(sys.argv) > 2 and sys.argv[1] == "--serve":
        _serve_with_marks(sys.argv[2], sys.argv[3:])
        return 0
    from bench import run

    taps = int(sys.argv[sys.argv.index("--taps") + 1]) if "--taps" in sys.argv else 20
    with tempfile.TemporaryDirectory(prefix="ambiance-tap-profile-") as tmp:
        out = str(Path(tmp) / "marks.json")
        real_args = run._tap_service_args

        def args(ctx: run.Ctx, address: str, broker: Any) -> list[str]:
            given = real_args(ctx, address, broker)  # python -m ambiance serve ...
            return [given[0], "-m", "bench.tap_profile", "--serve", out, *given[3:]]

        sent: list[float] = []
        real_request = http.client.HTTPConnection.request

        def request(self: Any, method: str, url: str, *a: Any, **k: Any) -> None:
            if method == "POST":
                sent.append(time.monotonic())
            real_request(self, method, url, *a, **k)

        run._tap_service_args = args  # type: ignore[assignment]
        run._tap_floor = lambda *a: None  # type: ignore[assignment,return-value]
        http.client.HTTPConnection.request = request  # type: ignore[method-assign]
        ctx = run.Ctx(quick=taps <= 20, tmp=Path(tmp))
        run.bench_tap(ctx)
        marks = json.loads(Path(out).read_text())
    print(f"tap-to-room: {ctx.rows[0].figure} over {len(sent) - 1} taps")
    after: dict[str, list[float]] = {m: [] for m in MARKS}
    for t0 in sent[1:]:  # the first tap warms up
        seen: dict[str, float] = {}
        for label, at in marks:
            if at >= t0 and label not in seen:
                seen[label] = at - t0
        for label, value in seen.items():
            after[label].append(value)
    print("median time after the client sent POST /spa:")
    for label in MARKS:
        if after[label]:
            print(f"  {label:<10} {statistics.median(after[label]) * 1000:6.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
