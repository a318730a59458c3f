"""The Hue v1 emulator in a process of its own: `python -m bench.hue_process LIGHTS`.

Prints `ready <address>`, then `put <time>` for every group action it receives (the
arrival by time.monotonic(), which all processes of the machine share); exits when its
stdin closes. A bridge is a device of its own: in the benchmark's process it would
compete for the GIL with what is measured.
"""

from __future__ import annotations

import sys
import threading

from bench.run import GROUP_ACTION, hue_room


def main() -> int:
    emu = hue_room(int(sys.argv[1]))  # the same room the in-process benchmarks use
    done = threading.Event()

    def report() -> None:
        seen = 0
        while not done.is_set():
            if not emu.wait_for("PUT", GROUP_ACTION, count=seen + 1, timeout=0.5):
                continue
            puts = [r for r in emu.requests if r.method == "PUT" and r.resource == GROUP_ACTION]
            for r in puts[seen:]:
                print(f"put {r.at!r}", flush=True)
            seen = len(puts)

    with emu:
        print(f"ready {emu.address}", flush=True)
        threading.Thread(target=report, daemon=True).start()
        sys.stdin.read()
        done.set()
    return 0


if __name__ == "__main__":
    sys.exit(main())
