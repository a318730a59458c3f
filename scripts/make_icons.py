#!/usr/bin/env python3
"""Draw the app's icons (api/web/icons/icon-{192,512}.png) with the standard library only.

A warm, softly glowing amber disc on a deep warm-grey square: a candle seen from above.
The disc stays inside the middle 60 %, so the icon also works masked to a circle.
Run it again after changing the colours: `python3 scripts/make_icons.py`.
"""

from __future__ import annotations

import math
import struct
import zlib
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "api" / "web" / "icons"
BACKGROUND = (26, 23, 20)  # the page's background
GLOW = (208, 138, 78)  # the page's accent (amber)
CORE = (236, 190, 130)  # the disc's warm centre (never white)


def _chunk(kind: bytes, data: bytes) -> bytes:
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)


def png(width: int, height: int, rows: list[bytes]) -> bytes:
    """An 8-bit RGB PNG from rows of packed RGB bytes."""
    raw = b"".join(b"\x00" + row for row in rows)  # filter type 0 (none) on every row
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(raw, 9))
        + _chunk(b"IEND", b"")
    )


def _mix(a: tuple[int, int, int], b: tuple[int, int, int], t: float) -> tuple[int, int, int]:
    t = max(0.0, min(1.0, t))
    return (
        round(a[0] + (b[0] - a[0]) * t),
        round(a[1] + (b[1] - a[1]) * t),
        round(a[2] + (b[2] - a[2]) * t),
    )


def icon(size: int) -> bytes:
    centre = (size - 1) / 2
    disc = size * 0.22  # radius of the solid disc
    glow = size * 0.30  # the glow fades out over this distance beyond the disc
    rows = []
    for y in range(size):
        row = bytearray()
        for x in range(size):
            d = math.hypot(x - centre, y - centre)
            if d <= disc:
                colour = _mix(CORE, GLOW, (d / disc) ** 2)
            else:
                # a soft falloff, with one pixel of antialiasing at the disc's edge
                edge = max(0.0, 1.0 - (d - disc))
                halo = 0.55 * math.exp(-3.0 * (d - disc) / glow)
                colour = _mix(BACKGROUND, GLOW, max(halo, edge))
            row.extend(colour)
        rows.append(bytes(row))
    return png(size, size, rows)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for size in (192, 512):
        path = OUT / f"icon-{size}.png"
        path.write_bytes(icon(size))
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
